package delta

import "math"

// Binary range coder with adaptive 11-bit probabilities (the LZMA coder).

const (
	probBits  = 11
	probInit  = 1 << (probBits - 1)
	probTotal = 1 << probBits
	moveBits  = 5
	topValue  = 1 << 24
)

type prob uint16

func initProbs(p []prob) {
	for i := range p {
		p[i] = probInit
	}
}

type rangeEncoder struct {
	low       uint64
	rng       uint32
	cache     byte
	cacheSize int64
	out       []byte
}

func newRangeEncoder() *rangeEncoder {
	return &rangeEncoder{rng: 0xFFFFFFFF, cacheSize: 1}
}

func (e *rangeEncoder) shiftLow() {
	if uint32(e.low) < 0xFF000000 || e.low>>32 != 0 {
		temp := e.cache
		for {
			e.out = append(e.out, temp+byte(e.low>>32))
			temp = 0xFF
			e.cacheSize--
			if e.cacheSize == 0 {
				break
			}
		}
		e.cache = byte(uint32(e.low) >> 24)
	}
	e.cacheSize++
	e.low = uint64(uint32(e.low) << 8)
}

func (e *rangeEncoder) bit(p *prob, b uint32) {
	bound := (e.rng >> probBits) * uint32(*p)
	if b == 0 {
		e.rng = bound
		*p += (probTotal - *p) >> moveBits
	} else {
		e.low += uint64(bound)
		e.rng -= bound
		*p -= *p >> moveBits
	}
	for e.rng < topValue {
		e.rng <<= 8
		e.shiftLow()
	}
}

func (e *rangeEncoder) direct(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		e.rng >>= 1
		if (v>>uint(i))&1 != 0 {
			e.low += uint64(e.rng)
		}
		for e.rng < topValue {
			e.rng <<= 8
			e.shiftLow()
		}
	}
}

func (e *rangeEncoder) tree(probs []prob, nbits int, sym uint32) {
	m := uint32(1)
	for i := nbits - 1; i >= 0; i-- {
		b := (sym >> uint(i)) & 1
		e.bit(&probs[m], b)
		m = m<<1 | b
	}
}

func (e *rangeEncoder) reverseTree(probs []prob, nbits int, sym uint32) {
	m := uint32(1)
	for i := 0; i < nbits; i++ {
		b := sym & 1
		sym >>= 1
		e.bit(&probs[m], b)
		m = m<<1 | b
	}
}

func (e *rangeEncoder) finish() []byte {
	for i := 0; i < 5; i++ {
		e.shiftLow()
	}
	return e.out
}

type rangeDecoder struct {
	in      []byte
	pos     int
	rng     uint32
	code    uint32
	overrun int
}

func (d *rangeDecoder) init(in []byte) {
	d.in = in
	d.pos = 0
	d.rng = 0xFFFFFFFF
	d.code = 0
	d.overrun = 0
	for i := 0; i < 5; i++ {
		d.code = d.code<<8 | uint32(d.next())
	}
}

func (d *rangeDecoder) next() byte {
	if d.pos < len(d.in) {
		b := d.in[d.pos]
		d.pos++
		return b
	}
	d.overrun++
	return 0
}

func (d *rangeDecoder) bit(p *prob) uint32 {
	bound := (d.rng >> probBits) * uint32(*p)
	var b uint32
	if d.code < bound {
		d.rng = bound
		*p += (probTotal - *p) >> moveBits
	} else {
		d.code -= bound
		d.rng -= bound
		*p -= *p >> moveBits
		b = 1
	}
	if d.rng < topValue {
		d.rng <<= 8
		d.code = d.code<<8 | uint32(d.next())
	}
	return b
}

func (d *rangeDecoder) direct(n int) uint32 {
	var v uint32
	for i := 0; i < n; i++ {
		d.rng >>= 1
		var b uint32
		if d.code >= d.rng {
			d.code -= d.rng
			b = 1
		}
		v = v<<1 | b
		if d.rng < topValue {
			d.rng <<= 8
			d.code = d.code<<8 | uint32(d.next())
		}
	}
	return v
}

func (d *rangeDecoder) tree(probs []prob, nbits int) uint32 {
	m := uint32(1)
	for i := 0; i < nbits; i++ {
		m = m<<1 | d.bit(&probs[m])
	}
	return m - (1 << uint(nbits))
}

func (d *rangeDecoder) reverseTree(probs []prob, nbits int) uint32 {
	m := uint32(1)
	var sym uint32
	for i := 0; i < nbits; i++ {
		b := d.bit(&probs[m])
		m = m<<1 | b
		sym |= b << uint(i)
	}
	return sym
}

// Prices (in 1/16 bit) for the encoder's decisions.
const priceShift = 4

var probPrices [probTotal >> 4]uint32

func init() {
	for i := range probPrices {
		p := (float64(i) + 0.5) * 16 / probTotal
		probPrices[i] = uint32(-math.Log2(p)*(1<<priceShift) + 0.5)
	}
}

func bitPrice(p prob, b uint32) uint32 {
	if b == 0 {
		return probPrices[p>>4]
	}
	return probPrices[(probTotal-p)>>4]
}

func treePrice(probs []prob, nbits int, sym uint32) uint32 {
	var price uint32
	m := uint32(1)
	for i := nbits - 1; i >= 0; i-- {
		b := (sym >> uint(i)) & 1
		price += bitPrice(probs[m], b)
		m = m<<1 | b
	}
	return price
}

func reverseTreePrice(probs []prob, nbits int, sym uint32) uint32 {
	var price uint32
	m := uint32(1)
	for i := 0; i < nbits; i++ {
		b := sym & 1
		sym >>= 1
		price += bitPrice(probs[m], b)
		m = m<<1 | b
	}
	return price
}
