package delta

import "math"

// Optimal parsing: a forward dynamic program over up to optWindow positions
// that picks, with prices from the current probabilities, the cheapest mix of
// literals, short reps, rep matches and (near or far) matches. A match of at
// least nice bytes ends the window and is taken as is, so long unchanged
// stretches cost no search.

const optWindow = 2048

type optNode struct {
	price uint32
	from  int32  // previous node
	dist  uint32 // distance of the step that reached this node
	len   int32  // 0: literal, 1: short rep, else match/rep length
	state uint32
	reps  [4]uint32
}

type matchCand struct {
	len  int
	dist int
}

// findAll returns the Pareto frontier of matches at p: increasing lengths,
// each with the smallest distance found for it.
func (e *lzEncoder) findAll(p, maxLen int, out []matchCand) []matchCand {
	e.insertTo(p)
	S := e.S
	out = out[:0]
	best := 1
	add := func(q int32) {
		if best < maxLen && S[int(q)+best] == S[p+best] {
			if l := matchLen(S, int(q), p, maxLen); l > best {
				best = l
				d := p - int(q) - 1
				// keep the frontier sorted by length; a longer match found via
				// the second table may have a smaller distance than earlier ones
				for len(out) > 0 && out[len(out)-1].dist >= d {
					out = out[:len(out)-1]
				}
				out = append(out, matchCand{l, d})
			}
		}
	}
	if p+4 <= len(S) {
		q := e.head4[hash4(S[p:])]
		for i := 0; i < e.depth4 && q >= 0 && best < maxLen && best < e.nice; i++ {
			add(q)
			q = e.chain4[q]
		}
	}
	if best < maxLen && best < 24 && p+8 <= len(S) {
		q := e.head8[hash8(S[p:])]
		for i := 0; i < e.depth8 && q >= 0 && best < maxLen; i++ {
			add(q)
			q = e.chain8[q]
		}
	}
	return out
}

type priceCache struct {
	matchLen [numPosStates][]uint32
	repLen   [numPosStates][]uint32
	distSlot [4][1 << slotBits]uint32
	align    [1 << alignBits]uint32
	age      int
}

func (e *lzEncoder) refreshPrices() {
	pc := e.pc
	if pc == nil {
		pc = &priceCache{}
		for ps := 0; ps < numPosStates; ps++ {
			pc.matchLen[ps] = make([]uint32, e.nice+1)
			pc.repLen[ps] = make([]uint32, e.nice+1)
		}
		e.pc = pc
	}
	m := e.m
	for ps := 0; ps < numPosStates; ps++ {
		for l := minMatch; l <= e.nice; l++ {
			pc.matchLen[ps][l] = m.matchLen.price(ps, uint32(l-minMatch))
			pc.repLen[ps][l] = m.repLen.price(ps, uint32(l-minMatch))
		}
	}
	for ls := 0; ls < 4; ls++ {
		for s := uint32(0); s < 1<<slotBits; s++ {
			pc.distSlot[ls][s] = treePrice(m.dist.slots[ls<<slotBits:], slotBits, s)
		}
	}
	for a := uint32(0); a < 1<<alignBits; a++ {
		pc.align[a] = reverseTreePrice(m.dist.align[:], alignBits, a)
	}
	pc.age = 0
}

func (e *lzEncoder) distPrice(ls int, dist uint32) uint32 {
	pc := e.pc
	slot := valSlot(dist)
	p := pc.distSlot[ls][slot]
	if slot < 4 {
		return p
	}
	fb := int(slot>>1) - 1
	base := (2 | slot&1) << uint(fb)
	r := dist - base
	if slot < endPosModel {
		return p + reverseTreePrice(e.m.dist.spec[base-slot:], fb, r)
	}
	return p + uint32(fb-alignBits)<<priceShift + pc.align[r&(1<<alignBits-1)]
}

func (e *lzEncoder) litPriceAt(p int, st uint32, rep0 uint32) uint32 {
	m := e.m
	S := e.S
	price := bitPrice(m.isMatch[st<<posBits|uint32(p)&posMask], 0)
	var prev byte
	if p > 0 {
		prev = S[p-1]
	}
	probs := m.litProbs(prev)
	b := uint32(S[p])
	if st < 7 {
		return price + treePrice(probs, 8, b)
	}
	matchByte := uint32(S[p-int(rep0)-1])
	offs := uint32(0x100)
	sym := uint32(1)
	for i := 7; i >= 0; i-- {
		matchByte <<= 1
		bit := matchByte & offs
		c := (b >> uint(i)) & 1
		price += bitPrice(probs[offs+bit+sym], c)
		sym = sym<<1 | c
		if c == 0 {
			offs &^= bit
		} else {
			offs &= bit
		}
	}
	return price
}

// encodeOptimal codes S[start:] with the optimal parser.
func (e *lzEncoder) encodeOptimal(start int) []byte {
	S := e.S
	m := e.m
	opt := make([]optNode, optWindow+e.nice+2)
	var cands []matchCand
	for i := range opt {
		opt[i].price = math.MaxUint32
	}
	touched := 0
	e.refreshPrices()
	p := start
	for p < len(S) {
		if e.pc.age > 4096 {
			e.refreshPrices()
		}
		// Long rep or match right here: take it without a window.
		maxLen := min(maxMatch, len(S)-p)
		repLen, repIdx := e.repAt(p, maxLen)
		if repLen >= e.nice {
			e.insertTo(p)
			e.emitRep(p, repIdx, repLen)
			e.pc.age += 1
			p += repLen
			continue
		}
		for i := 1; i <= touched; i++ {
			opt[i].price = math.MaxUint32
		}
		opt[0] = optNode{price: 0, state: e.state, reps: e.reps}
		lenEnd := 0
		end := -1
		var tail optNode // a long final step, when one is found
		tailLen := 0
		i := 0
		for ; i < optWindow; i++ {
			if i > lenEnd && i > 0 {
				break
			}
			cur := &opt[i]
			if cur.price == math.MaxUint32 {
				continue
			}
			pos := p + i
			if pos >= len(S) {
				break
			}
			if i > 0 {
				// finalize this node's state and reps from its step
				prev := &opt[cur.from]
				cur.reps = prev.reps
				switch {
				case cur.len == 0:
					cur.state = stateLit(prev.state)
				case cur.len == 1:
					cur.state = stateShortRep(prev.state)
				default:
					r := -1
					for k, d := range prev.reps {
						if d == cur.dist {
							r = k
							break
						}
					}
					if r >= 0 {
						cur.state = stateRep(prev.state)
						copy(cur.reps[1:r+1], prev.reps[:r])
						cur.reps[0] = cur.dist
					} else {
						cur.state = stateMatch(prev.state)
						cur.reps = [4]uint32{cur.dist, prev.reps[0], prev.reps[1], prev.reps[2]}
					}
				}
			}
			st := cur.state
			ps := uint32(pos) & posMask
			ml := min(maxMatch, len(S)-pos)
			// literal
			if pos-int(cur.reps[0])-1 >= 0 || st < 7 {
				lp := cur.price + e.litPriceAt(pos, st, cur.reps[0])
				if lp < opt[i+1].price {
					opt[i+1] = optNode{price: lp, from: int32(i), len: 0}
				}
			}
			if i+1 > lenEnd {
				lenEnd = i + 1
			}
			matchBase := cur.price + bitPrice(m.isMatch[st<<posBits|ps], 1)
			repBase := matchBase + bitPrice(m.isRep[st], 1)
			// short rep
			if q := pos - int(cur.reps[0]) - 1; q >= 0 && S[q] == S[pos] {
				sp := repBase + bitPrice(m.isRepG0[st], 0) + bitPrice(m.isRep0Long[st<<posBits|ps], 0)
				if sp < opt[i+1].price {
					opt[i+1] = optNode{price: sp, from: int32(i), len: 1, dist: cur.reps[0]}
				}
			}
			// rep matches
			longest := 0
			var longDist uint32
			for r := 0; r < 4; r++ {
				q := pos - int(cur.reps[r]) - 1
				if q < 0 {
					continue
				}
				l := matchLen(S, q, pos, ml)
				if l < minMatch {
					continue
				}
				if l >= e.nice {
					if l > longest {
						longest, longDist = l, cur.reps[r]
					}
					continue
				}
				var rp uint32
				switch r {
				case 0:
					rp = repBase + bitPrice(m.isRepG0[st], 0) + bitPrice(m.isRep0Long[st<<posBits|ps], 1)
				case 1:
					rp = repBase + bitPrice(m.isRepG0[st], 1) + bitPrice(m.isRepG1[st], 0)
				default:
					rp = repBase + bitPrice(m.isRepG0[st], 1) + bitPrice(m.isRepG1[st], 1) + bitPrice(m.isRepG2[st], uint32(r-2))
				}
				for k := minMatch; k <= l; k++ {
					if pr := rp + e.pc.repLen[ps][k]; pr < opt[i+k].price {
						opt[i+k] = optNode{price: pr, from: int32(i), len: int32(k), dist: cur.reps[r]}
					}
				}
				if i+l > lenEnd {
					lenEnd = i + l
				}
			}
			if longest == 0 {
				// new matches
				cands = e.findAll(pos, ml, cands)
				newBase := matchBase + bitPrice(m.isRep[st], 0)
				farFlag := bitPrice(m.isNear[st], 0)
				nearFlag := bitPrice(m.isNear[st], 1)
				k := minMatch
				for _, c := range cands {
					if c.len >= e.nice {
						if c.len > longest {
							longest, longDist = c.len, uint32(c.dist)
						}
						break
					}
					isRep := false
					for _, d := range cur.reps {
						if int(d) == c.dist {
							isRep = true
						}
					}
					if isRep {
						k = max(k, c.len+1)
						continue
					}
					// distance part (near or far), per length state
					var nearP uint32 = math.MaxUint32
					delta := c.dist - int(cur.reps[0])
					if delta != 0 && delta >= -nearLimit && delta <= nearLimit {
						sign, mag := uint32(0), uint32(delta-1)
						if delta < 0 {
							sign, mag = 1, uint32(-delta-1)
						}
						nearP = nearFlag + bitPrice(m.nearSign[0], sign) + m.near.price(0, mag)
					}
					for ; k <= c.len; k++ {
						dp := farFlag + e.distPrice(lenState(k), uint32(c.dist))
						if nearP < dp {
							dp = nearP
						}
						if pr := newBase + dp + e.pc.matchLen[ps][k]; pr < opt[i+k].price {
							opt[i+k] = optNode{price: pr, from: int32(i), len: int32(k), dist: uint32(c.dist)}
						}
					}
					if i+c.len > lenEnd {
						lenEnd = i + c.len
					}
				}
			}
			if longest > 0 {
				end = i
				tail = optNode{from: int32(i), len: int32(longest), dist: longDist}
				tailLen = longest
				break
			}
		}
		touched = min(len(opt)-1, lenEnd+1)
		if end < 0 {
			end = i
			if end > lenEnd {
				end = lenEnd
			}
			if end == 0 {
				end = 1
			}
		}
		// backtrack from end
		var steps []optNode
		if tailLen > 0 {
			steps = append(steps, tail)
		}
		for j := end; j > 0; {
			n := opt[j]
			steps = append(steps, n)
			j = int(n.from)
		}
		for k := len(steps) - 1; k >= 0; k-- {
			s := steps[k]
			at := p
			switch {
			case s.len == 0:
				e.emitLit(at)
				p++
			case s.len == 1:
				if e.reps[0] == s.dist {
					e.emitShortRep(at)
				} else {
					e.emitLit(at)
				}
				p++
			default:
				e.emitMatch(at, int(s.dist), int(s.len))
				p += int(s.len)
			}
			e.pc.age++
		}
	}
	return e.rc.finish()
}
