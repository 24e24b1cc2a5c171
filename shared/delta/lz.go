package delta

import (
	"encoding/binary"
	"errors"
	"math/bits"
)

// The codec: an LZ77 coder over a source buffer S = dictionary + output so far,
// entropy coded with an adaptive binary range coder. It follows LZMA (states,
// four repeated distances, "matched" literals coded against the byte at rep0,
// slot-coded distances), with three changes for deltas between builds:
//
//   - near matches: a new distance coded as a small signed delta from rep0, so
//     resuming a copy after an insertion or deletion costs a few bits instead of
//     a full distance;
//   - lengths are slot coded (like distances), so one match can copy up to 16 MiB
//     and an unchanged stretch of several megabytes costs a few bytes;
//   - no end marker: the caller knows how many bytes to decode.

const (
	numStates    = 12
	posBits      = 2
	numPosStates = 1 << posBits
	posMask      = numPosStates - 1
	slotBits     = 6
	endPosModel  = 14
	alignBits    = 4
	nearSlotBits = 5
	nearLimit    = 1 << 16 // |delta| <= nearLimit
	lenSlotBits  = 6
	minMatch     = 2
	maxMatch     = 1 << 24
	litSize      = 0x300
	defaultLC    = 3
)

var errCorrupt = errors.New("corrupt data stream")

// valModel codes an unsigned value as a slot (bit tree) plus footer bits.
type valModel struct {
	nbits int
	slots []prob
	spec  [128 - endPosModel + 1]prob
	align [1 << alignBits]prob
}

func newValModel(ctx, nbits int) *valModel {
	m := &valModel{nbits: nbits, slots: make([]prob, ctx<<uint(nbits))}
	initProbs(m.slots)
	initProbs(m.spec[:])
	initProbs(m.align[:])
	return m
}

func valSlot(v uint32) uint32 {
	if v < 4 {
		return v
	}
	n := uint32(bits.Len32(v) - 1)
	return 2*n + (v>>(n-1))&1
}

func (m *valModel) encode(e *rangeEncoder, ctx int, v uint32) {
	slot := valSlot(v)
	e.tree(m.slots[ctx<<uint(m.nbits):], m.nbits, slot)
	if slot < 4 {
		return
	}
	fb := int(slot>>1) - 1
	base := (2 | slot&1) << uint(fb)
	r := v - base
	if slot < endPosModel {
		e.reverseTree(m.spec[base-slot:], fb, r)
		return
	}
	e.direct(r>>alignBits, fb-alignBits)
	e.reverseTree(m.align[:], alignBits, r&(1<<alignBits-1))
}

func (m *valModel) price(ctx int, v uint32) uint32 {
	slot := valSlot(v)
	p := treePrice(m.slots[ctx<<uint(m.nbits):], m.nbits, slot)
	if slot < 4 {
		return p
	}
	fb := int(slot>>1) - 1
	base := (2 | slot&1) << uint(fb)
	r := v - base
	if slot < endPosModel {
		return p + reverseTreePrice(m.spec[base-slot:], fb, r)
	}
	return p + uint32(fb-alignBits)<<priceShift + reverseTreePrice(m.align[:], alignBits, r&(1<<alignBits-1))
}

func (m *valModel) decode(d *rangeDecoder, ctx int) (uint32, bool) {
	slot := d.tree(m.slots[ctx<<uint(m.nbits):], m.nbits)
	if slot < 4 {
		return slot, true
	}
	fb := int(slot>>1) - 1
	if fb >= 32 {
		return 0, false
	}
	base := (2 | slot&1) << uint(fb)
	if slot < endPosModel {
		return base + d.reverseTree(m.spec[base-slot:], fb), true
	}
	v := d.direct(fb-alignBits) << alignBits
	v |= d.reverseTree(m.align[:], alignBits)
	return base + v, true
}

type model struct {
	lc         uint
	isMatch    [numStates << posBits]prob
	isRep      [numStates]prob
	isRepG0    [numStates]prob
	isRepG1    [numStates]prob
	isRepG2    [numStates]prob
	isRep0Long [numStates << posBits]prob
	isNear     [numStates]prob
	nearSign   [2]prob
	lit        []prob
	dist       *valModel
	near       *valModel
	matchLen   *valModel
	repLen     *valModel
}

func newModel(lc uint) *model {
	m := &model{lc: lc, lit: make([]prob, litSize<<lc)}
	initProbs(m.isMatch[:])
	initProbs(m.isRep[:])
	initProbs(m.isRepG0[:])
	initProbs(m.isRepG1[:])
	initProbs(m.isRepG2[:])
	initProbs(m.isRep0Long[:])
	initProbs(m.isNear[:])
	initProbs(m.nearSign[:])
	initProbs(m.lit)
	m.dist = newValModel(4, slotBits)
	m.near = newValModel(1, nearSlotBits)
	m.matchLen = newValModel(numPosStates, lenSlotBits)
	m.repLen = newValModel(numPosStates, lenSlotBits)
	return m
}

func (m *model) litProbs(prev byte) []prob {
	ctx := int(prev) >> (8 - m.lc)
	return m.lit[ctx*litSize : (ctx+1)*litSize]
}

func stateLit(s uint32) uint32 {
	switch {
	case s < 4:
		return 0
	case s < 10:
		return s - 3
	default:
		return s - 6
	}
}

func stateMatch(s uint32) uint32 {
	if s < 7 {
		return 7
	}
	return 10
}

func stateRep(s uint32) uint32 {
	if s < 7 {
		return 8
	}
	return 11
}

func stateShortRep(s uint32) uint32 {
	if s < 7 {
		return 9
	}
	return 11
}

func lenState(l int) int {
	if l-minMatch < 3 {
		return l - minMatch
	}
	return 3
}

// ---------------------------------------------------------------- decoder

type lzDecoder struct {
	m     *model
	rc    rangeDecoder
	state uint32
	reps  [4]uint32
}

func newLZDecoder(lc uint, in []byte) *lzDecoder {
	d := &lzDecoder{m: newModel(lc)}
	d.rc.init(in)
	return d
}

// decode appends n bytes to buf (which holds the dictionary and all output so
// far; matches may reach back to its start) and returns the grown buffer.
func (d *lzDecoder) decode(buf []byte, n int) ([]byte, error) {
	m := d.m
	rc := &d.rc
	end := len(buf) + n
	if cap(buf) < end {
		nb := make([]byte, len(buf), end)
		copy(nb, buf)
		buf = nb
	}
	for len(buf) < end {
		if rc.overrun > 4 {
			return buf, errCorrupt
		}
		p := len(buf)
		posState := uint32(p) & posMask
		st := d.state
		if rc.bit(&m.isMatch[st<<posBits|posState]) == 0 {
			var prev byte
			if p > 0 {
				prev = buf[p-1]
			}
			probs := m.litProbs(prev)
			var sym uint32 = 1
			if st < 7 {
				for sym < 0x100 {
					sym = sym<<1 | rc.bit(&probs[sym])
				}
			} else {
				q := p - int(d.reps[0]) - 1
				if q < 0 {
					return buf, errCorrupt
				}
				matchByte := uint32(buf[q])
				offs := uint32(0x100)
				for sym < 0x100 {
					matchByte <<= 1
					bit := matchByte & offs
					b := rc.bit(&probs[offs+bit+sym])
					sym = sym<<1 | b
					if b == 0 {
						offs &^= bit
					} else {
						offs &= bit
					}
				}
			}
			buf = append(buf, byte(sym))
			d.state = stateLit(st)
			continue
		}
		var dist uint32
		var length int
		if rc.bit(&m.isRep[st]) == 0 {
			near := rc.bit(&m.isNear[st]) == 1
			v, ok := m.matchLen.decode(rc, int(posState))
			if !ok || v > maxMatch {
				return buf, errCorrupt
			}
			length = int(v) + minMatch
			if near {
				sign := rc.bit(&m.nearSign[0])
				mag, ok := m.near.decode(rc, 0)
				if !ok || mag >= nearLimit {
					return buf, errCorrupt
				}
				if sign == 0 {
					dist = d.reps[0] + mag + 1
				} else {
					if mag+1 > d.reps[0] {
						return buf, errCorrupt
					}
					dist = d.reps[0] - mag - 1
				}
			} else {
				v, ok := m.dist.decode(rc, lenState(length))
				if !ok {
					return buf, errCorrupt
				}
				dist = v
			}
			d.reps[3], d.reps[2], d.reps[1], d.reps[0] = d.reps[2], d.reps[1], d.reps[0], dist
			d.state = stateMatch(st)
		} else {
			if rc.bit(&m.isRepG0[st]) == 0 {
				if rc.bit(&m.isRep0Long[st<<posBits|posState]) == 0 {
					q := p - int(d.reps[0]) - 1
					if q < 0 {
						return buf, errCorrupt
					}
					buf = append(buf, buf[q])
					d.state = stateShortRep(st)
					continue
				}
				dist = d.reps[0]
			} else {
				if rc.bit(&m.isRepG1[st]) == 0 {
					dist = d.reps[1]
					d.reps[1] = d.reps[0]
				} else {
					if rc.bit(&m.isRepG2[st]) == 0 {
						dist = d.reps[2]
					} else {
						dist = d.reps[3]
						d.reps[3] = d.reps[2]
					}
					d.reps[2] = d.reps[1]
					d.reps[1] = d.reps[0]
				}
				d.reps[0] = dist
			}
			v, ok := m.repLen.decode(rc, int(posState))
			if !ok || v > maxMatch {
				return buf, errCorrupt
			}
			length = int(v) + minMatch
			d.state = stateRep(st)
		}
		q := p - int(dist) - 1
		if q < 0 || int(dist) < 0 || length > end-p {
			return buf, errCorrupt
		}
		if q+length <= p {
			buf = append(buf, buf[q:q+length]...)
		} else {
			for i := 0; i < length; i++ {
				buf = append(buf, buf[q+i])
			}
		}
	}
	if rc.overrun > 4 {
		return buf, errCorrupt
	}
	return buf, nil
}

// ---------------------------------------------------------------- encoder

type encParams struct {
	lc     uint
	nice   int
	depth4 int
	depth8 int
	lazy   bool // lazy matching instead of the optimal parser (faster)
}

var defaultEncParams = encParams{lc: defaultLC, nice: 64, depth4: 48, depth8: 24}

const (
	hash4Bits = 20
	hash8Bits = 22
)

type lzEncoder struct {
	encParams
	m     *model
	rc    *rangeEncoder
	S     []byte
	state uint32
	reps  [4]uint32

	head4, chain4 []int32
	head8, chain8 []int32
	inserted      int
	pc            *priceCache
}

// lzTables are the match finder's tables, reusable from one stream to the next.
type lzTables struct {
	head4, chain4 []int32
	head8, chain8 []int32
}

func grow(s []int32, n int) []int32 {
	if cap(s) >= n {
		return s[:n]
	}
	return make([]int32, n)
}

func newLZEncoder(par encParams, S []byte, t *lzTables) *lzEncoder {
	if t == nil {
		t = &lzTables{}
	}
	t.head4 = grow(t.head4, 1<<hash4Bits)
	t.head8 = grow(t.head8, 1<<hash8Bits)
	t.chain4 = grow(t.chain4, len(S))
	t.chain8 = grow(t.chain8, len(S))
	e := &lzEncoder{encParams: par, m: newModel(par.lc), rc: newRangeEncoder(), S: S,
		head4: t.head4, head8: t.head8, chain4: t.chain4, chain8: t.chain8}
	for i := range e.head4 {
		e.head4[i] = -1
	}
	for i := range e.head8 {
		e.head8[i] = -1
	}
	return e
}

func hash4(b []byte) uint32 {
	return (binary.LittleEndian.Uint32(b) * 2654435761) >> (32 - hash4Bits)
}

func hash8(b []byte) uint32 {
	return uint32((binary.LittleEndian.Uint64(b) * 0x9E3779B97F4A7C15) >> (64 - hash8Bits))
}

// insertTo adds every position below limit to the hash chains.
func (e *lzEncoder) insertTo(limit int) {
	S := e.S
	for q := e.inserted; q < limit; q++ {
		if q+8 <= len(S) {
			h := hash8(S[q:])
			e.chain8[q] = e.head8[h]
			e.head8[h] = int32(q)
		}
		if q+4 <= len(S) {
			h := hash4(S[q:])
			e.chain4[q] = e.head4[h]
			e.head4[h] = int32(q)
		}
	}
	if limit > e.inserted {
		e.inserted = limit
	}
}

func matchLen(S []byte, q, p, max int) int {
	n := 0
	for n+8 <= max {
		x := binary.LittleEndian.Uint64(S[q+n:]) ^ binary.LittleEndian.Uint64(S[p+n:])
		if x != 0 {
			return n + bits.TrailingZeros64(x)>>3
		}
		n += 8
	}
	for n < max && S[q+n] == S[p+n] {
		n++
	}
	return n
}

// find returns the longest match at p (length 0 if none) from the hash chains.
func (e *lzEncoder) find(p, maxLen int) (int, int) {
	e.insertTo(p)
	S := e.S
	best, bestQ := 0, 0
	if p+8 <= len(S) {
		q := e.head8[hash8(S[p:])]
		for i := 0; i < e.depth8 && q >= 0; i++ {
			if l := matchLen(S, int(q), p, maxLen); l > best {
				best, bestQ = l, int(q)
				if l >= maxLen {
					break
				}
			}
			q = e.chain8[q]
		}
	}
	if best < 8 && p+4 <= len(S) {
		q := e.head4[hash4(S[p:])]
		for i := 0; i < e.depth4 && q >= 0 && best < maxLen; i++ {
			if best < maxLen && S[int(q)+best] == S[p+best] {
				if l := matchLen(S, int(q), p, maxLen); l > best {
					best, bestQ = l, int(q)
					if l >= e.nice {
						break
					}
				}
			}
			q = e.chain4[q]
		}
	}
	if best < minMatch {
		return 0, 0
	}
	return best, p - bestQ - 1
}

func (e *lzEncoder) litPrice(p int) uint32 {
	return e.litPriceAt(p, e.state, uint32(e.reps[0]))
}

func (e *lzEncoder) emitLit(p int) {
	m := e.m
	S := e.S
	st := e.state
	e.rc.bit(&m.isMatch[st<<posBits|uint32(p)&posMask], 0)
	var prev byte
	if p > 0 {
		prev = S[p-1]
	}
	probs := m.litProbs(prev)
	b := uint32(S[p])
	if st < 7 {
		e.rc.tree(probs, 8, b)
	} else {
		matchByte := uint32(S[p-int(e.reps[0])-1])
		offs := uint32(0x100)
		sym := uint32(1)
		for i := 7; i >= 0; i-- {
			matchByte <<= 1
			bit := matchByte & offs
			c := (b >> uint(i)) & 1
			e.rc.bit(&probs[offs+bit+sym], c)
			sym = sym<<1 | c
			if c == 0 {
				offs &^= bit
			} else {
				offs &= bit
			}
		}
	}
	e.state = stateLit(st)
}

func (e *lzEncoder) shortRepPrice(p int) uint32 {
	m := e.m
	st := e.state
	ps := uint32(p) & posMask
	return bitPrice(m.isMatch[st<<posBits|ps], 1) + bitPrice(m.isRep[st], 1) +
		bitPrice(m.isRepG0[st], 0) + bitPrice(m.isRep0Long[st<<posBits|ps], 0)
}

func (e *lzEncoder) emitShortRep(p int) {
	m := e.m
	st := e.state
	ps := uint32(p) & posMask
	e.rc.bit(&m.isMatch[st<<posBits|ps], 1)
	e.rc.bit(&m.isRep[st], 1)
	e.rc.bit(&m.isRepG0[st], 0)
	e.rc.bit(&m.isRep0Long[st<<posBits|ps], 0)
	e.state = stateShortRep(st)
}

func (e *lzEncoder) repPrice(p, idx, length int) uint32 {
	m := e.m
	st := e.state
	ps := uint32(p) & posMask
	price := bitPrice(m.isMatch[st<<posBits|ps], 1) + bitPrice(m.isRep[st], 1)
	switch idx {
	case 0:
		price += bitPrice(m.isRepG0[st], 0) + bitPrice(m.isRep0Long[st<<posBits|ps], 1)
	case 1:
		price += bitPrice(m.isRepG0[st], 1) + bitPrice(m.isRepG1[st], 0)
	default:
		price += bitPrice(m.isRepG0[st], 1) + bitPrice(m.isRepG1[st], 1) + bitPrice(m.isRepG2[st], uint32(idx-2))
	}
	return price + m.repLen.price(int(ps), uint32(length-minMatch))
}

func (e *lzEncoder) emitRep(p, idx, length int) {
	m := e.m
	st := e.state
	ps := uint32(p) & posMask
	rc := e.rc
	rc.bit(&m.isMatch[st<<posBits|ps], 1)
	rc.bit(&m.isRep[st], 1)
	if idx == 0 {
		rc.bit(&m.isRepG0[st], 0)
		rc.bit(&m.isRep0Long[st<<posBits|ps], 1)
	} else {
		rc.bit(&m.isRepG0[st], 1)
		dist := e.reps[idx]
		if idx == 1 {
			rc.bit(&m.isRepG1[st], 0)
		} else {
			rc.bit(&m.isRepG1[st], 1)
			rc.bit(&m.isRepG2[st], uint32(idx-2))
			if idx == 3 {
				e.reps[3] = e.reps[2]
			}
			e.reps[2] = e.reps[1]
		}
		e.reps[1] = e.reps[0]
		e.reps[0] = dist
	}
	m.repLen.encode(rc, int(ps), uint32(length-minMatch))
	e.state = stateRep(st)
}

// nearDelta reports whether dist can be coded as a near match.
func (e *lzEncoder) nearDelta(dist int) (sign, mag uint32, ok bool) {
	r0 := int(e.reps[0])
	delta := dist - r0
	switch {
	case delta > 0 && delta <= nearLimit:
		return 0, uint32(delta - 1), true
	case delta < 0 && -delta <= nearLimit:
		return 1, uint32(-delta - 1), true
	}
	return 0, 0, false
}

// matchPrice is the price of a new (or near) match; near tells which is cheaper.
func (e *lzEncoder) matchPrice(p, dist, length int) (uint32, bool) {
	m := e.m
	st := e.state
	ps := uint32(p) & posMask
	price := bitPrice(m.isMatch[st<<posBits|ps], 1) + bitPrice(m.isRep[st], 0) +
		m.matchLen.price(int(ps), uint32(length-minMatch))
	far := bitPrice(m.isNear[st], 0) + m.dist.price(lenState(length), uint32(dist))
	if sign, mag, ok := e.nearDelta(dist); ok {
		near := bitPrice(m.isNear[st], 1) + bitPrice(m.nearSign[0], sign) + m.near.price(0, mag)
		if near < far {
			return price + near, true
		}
	}
	return price + far, false
}

func (e *lzEncoder) emitMatch(p, dist, length int) {
	for i, r := range e.reps {
		if int(r) == dist {
			e.emitRep(p, i, length)
			return
		}
	}
	m := e.m
	st := e.state
	ps := uint32(p) & posMask
	rc := e.rc
	_, near := e.matchPrice(p, dist, length)
	rc.bit(&m.isMatch[st<<posBits|ps], 1)
	rc.bit(&m.isRep[st], 0)
	if near {
		rc.bit(&m.isNear[st], 1)
		m.matchLen.encode(rc, int(ps), uint32(length-minMatch))
		sign, mag, _ := e.nearDelta(dist)
		rc.bit(&m.nearSign[0], sign)
		m.near.encode(rc, 0, mag)
	} else {
		rc.bit(&m.isNear[st], 0)
		m.matchLen.encode(rc, int(ps), uint32(length-minMatch))
		m.dist.encode(rc, lenState(length), uint32(dist))
	}
	e.reps[3], e.reps[2], e.reps[1], e.reps[0] = e.reps[2], e.reps[1], e.reps[0], uint32(dist)
	e.state = stateMatch(st)
}

// worth reports whether a match is cheaper than coding its bytes as literals.
func (e *lzEncoder) worth(p, dist, length int) bool {
	if length >= 8 {
		return true
	}
	mp, _ := e.matchPrice(p, dist, length)
	var lp uint32
	for i := 0; i < length; i++ {
		lp += e.litPrice(p + i)
	}
	return mp < lp
}

func (e *lzEncoder) repAt(p, maxLen int) (int, int) {
	best, idx := 0, 0
	for i, r := range e.reps {
		q := p - int(r) - 1
		if q < 0 {
			continue
		}
		if l := matchLen(e.S, q, p, maxLen); l > best {
			best, idx = l, i
		}
	}
	return best, idx
}

// encode codes S[start:] and returns the stream.
func (e *lzEncoder) encode(start int) []byte {
	S := e.S
	p := start
	cacheP, cacheLen, cacheDist := -1, 0, 0
	for p < len(S) {
		maxLen := min(maxMatch, len(S)-p)
		repLen, repIdx := e.repAt(p, maxLen)
		if repLen >= e.nice {
			e.emitRep(p, repIdx, repLen)
			p += repLen
			continue
		}
		var mLen, mDist int
		if cacheP == p {
			mLen, mDist = cacheLen, cacheDist
		} else {
			mLen, mDist = e.find(p, maxLen)
		}
		if mLen >= e.nice {
			e.emitMatch(p, mDist, mLen)
			p += mLen
			continue
		}
		if repLen >= minMatch && (repLen+1 >= mLen || (repLen+2 >= mLen && mDist >= 1<<9) || (repLen+3 >= mLen && mDist >= 1<<15)) {
			e.emitRep(p, repIdx, repLen)
			p += repLen
			continue
		}
		if mLen >= minMatch && !e.worth(p, mDist, mLen) {
			mLen = 0
		}
		if mLen < minMatch {
			if q := p - int(e.reps[0]) - 1; q >= 0 && S[q] == S[p] && e.shortRepPrice(p) < e.litPrice(p) {
				e.emitShortRep(p)
			} else {
				e.emitLit(p)
			}
			p++
			continue
		}
		// lazy evaluation: is the next position clearly better?
		if p+1 < len(S) {
			ml := min(maxMatch, len(S)-p-1)
			nLen, nDist := e.find(p+1, ml)
			cacheP, cacheLen, cacheDist = p+1, nLen, nDist
			nRep, _ := e.repAt(p+1, ml)
			if nRep >= mLen+1 || (nLen >= mLen+2) || (nLen == mLen+1 && nDist>>7 <= mDist) {
				if q := p - int(e.reps[0]) - 1; q >= 0 && S[q] == S[p] && e.shortRepPrice(p) < e.litPrice(p) {
					e.emitShortRep(p)
				} else {
					e.emitLit(p)
				}
				p++
				continue
			}
		}
		e.emitMatch(p, mDist, mLen)
		p += mLen
	}
	return e.rc.finish()
}

// lzCompress codes data with dict as preceding history.
func lzCompress(par encParams, dict, data []byte) []byte {
	S := make([]byte, 0, len(dict)+len(data))
	S = append(S, dict...)
	S = append(S, data...)
	return lzCompressBuf(par, S, len(dict), nil)
}

// lzCompressBuf codes S[start:] with S[:start] as history, reusing tables.
func lzCompressBuf(par encParams, S []byte, start int, t *lzTables) []byte {
	e := newLZEncoder(par, S, t)
	if par.lazy {
		return e.encode(start)
	}
	return e.encodeOptimal(start)
}

// lzDecompress decodes n bytes coded with lzCompress against dict.
func lzDecompress(lc uint, dict, in []byte, n int) ([]byte, error) {
	buf := make([]byte, len(dict), len(dict)+n)
	copy(buf, dict)
	d := newLZDecoder(lc, in)
	buf, err := d.decode(buf, n)
	if err != nil {
		return nil, err
	}
	return buf[len(dict):], nil
}
