package delta

import (
	"encoding/binary"
	"path"
	"sort"
	"strings"
)

// Reference selection: every new file that is not a copy of an old file is
// coded against one or more old files ("references"). The same path wins;
// otherwise the old files sharing the most sampled content fingerprints (which
// finds renamed hashed chunks such as index-3f2a9c1b.js -> index-9be04d77.js
// whatever the hashing scheme), with path similarity breaking ties and serving
// small files that have too few fingerprints.

const (
	fpWindow    = 12
	fpSampleLog = 5  // keep 1 position in 32
	fpIdxBits   = 24 // file index bits in a packed key
	fpCommon    = 8  // fingerprints found in more old files than this are ignored
	maxRefs     = 3
)

// fingerprints calls emit with the sampled fingerprints of data (may repeat).
func fingerprints(data []byte, emit func(fp uint64)) {
	for i := 0; i+fpWindow <= len(data); i++ {
		h := binary.LittleEndian.Uint64(data[i:])*0x9E3779B97F4A7C15 ^ uint64(binary.LittleEndian.Uint32(data[i+8:]))*0xC2B2AE3D27D4EB4F
		h ^= h >> 29
		h *= 0xBF58476D1CE4E5B9
		h ^= h >> 32
		if h&(1<<fpSampleLog-1) == 0 {
			emit(h >> (fpIdxBits + 0))
		}
	}
}

// fpIndex maps fingerprints to the old files holding them.
type fpIndex struct {
	keys []uint64 // fp<<fpIdxBits | file, sorted, unique
}

func (x *fpIndex) add(file int, data []byte) {
	start := len(x.keys)
	fingerprints(data, func(fp uint64) {
		x.keys = append(x.keys, fp<<fpIdxBits|uint64(file))
	})
	// dedupe this file's keys right away to keep the index small
	part := x.keys[start:]
	sort.Slice(part, func(i, j int) bool { return part[i] < part[j] })
	n := 0
	for i, k := range part {
		if i == 0 || k != part[n-1] {
			part[n] = k
			n++
		}
	}
	x.keys = x.keys[:start+n]
}

func (x *fpIndex) finish() {
	sort.Slice(x.keys, func(i, j int) bool { return x.keys[i] < x.keys[j] })
}

// scores counts, per old file, the distinct fingerprints of data it shares.
func (x *fpIndex) scores(data []byte) map[int]int {
	var fps []uint64
	fingerprints(data, func(fp uint64) { fps = append(fps, fp) })
	sort.Slice(fps, func(i, j int) bool { return fps[i] < fps[j] })
	sc := map[int]int{}
	for i, fp := range fps {
		if i > 0 && fps[i-1] == fp {
			continue
		}
		lo := sort.Search(len(x.keys), func(j int) bool { return x.keys[j] >= fp<<fpIdxBits })
		hi := lo
		for hi < len(x.keys) && x.keys[hi]>>fpIdxBits == fp && hi-lo <= fpCommon {
			hi++
		}
		if hi-lo > fpCommon {
			continue
		}
		for _, k := range x.keys[lo:hi] {
			sc[int(k&(1<<fpIdxBits-1))]++
		}
	}
	return sc
}

// nameSimilarity is the length of the common prefix plus the common suffix of
// two paths (0 when the directories or the extensions differ).
func nameSimilarity(a, b string) int {
	if path.Dir(a) != path.Dir(b) || path.Ext(a) != path.Ext(b) {
		return 0
	}
	n := min(len(a), len(b))
	pre := 0
	for pre < n && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < n-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	return pre + suf
}

// chooseRefs picks the references of one new file.
func chooseRefs(newPath string, data []byte, oldFiles []fileEntry, oldIndex map[string]int, idx *fpIndex) []int {
	var refs []int
	if j, ok := oldIndex[newPath]; ok {
		refs = append(refs, j)
	}
	sc := idx.scores(data)
	type cand struct{ file, score, name int }
	cands := make([]cand, 0, len(sc))
	for f, s := range sc {
		cands = append(cands, cand{f, s, nameSimilarity(newPath, oldFiles[f].path)})
	}
	sort.Slice(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		if a.score != b.score {
			return a.score > b.score
		}
		if a.name != b.name {
			return a.name > b.name
		}
		return a.file < b.file
	})
	top := 0
	for _, c := range cands {
		if len(refs) >= maxRefs {
			break
		}
		if len(refs) > 0 && refs[0] == c.file {
			continue
		}
		if top == 0 {
			top = c.score
		}
		if c.score < 2 || (len(refs) > 0 && c.score*4 < top) {
			break
		}
		refs = append(refs, c.file)
	}
	if len(refs) > 0 {
		return refs
	}
	// Small files: fall back to the most similar name in the same folder.
	base := path.Base(newPath)
	best, bestSim := -1, 0
	dir := path.Dir(newPath)
	lo := sort.Search(len(oldFiles), func(i int) bool { return oldFiles[i].path >= dir })
	for i := lo; i < len(oldFiles); i++ {
		p := oldFiles[i].path
		if dir != "." && !strings.HasPrefix(p, dir+"/") {
			break
		}
		if s := nameSimilarity(newPath, p); s > bestSim {
			best, bestSim = i, s
		}
	}
	if best >= 0 && bestSim >= len(dir)+1+min(len(base)/2, 4)+len(path.Ext(base)) {
		return []int{best}
	}
	return nil
}
