package release

import (
	"strconv"
	"strings"
)

// CompareVersions orders native versions the way app stores and the seed clients do:
// dot-separated numeric parts (missing = 0, each read up to its first non-digit), and a
// "-suffix" pre-release sorts before the same version without one. It returns -1, 0 or 1.
func CompareVersions(a, b string) int {
	an, as := splitSuffix(a)
	bn, bs := splitSuffix(b)
	ap, bp := strings.Split(an, "."), strings.Split(bn, ".")
	for i := 0; i < max(len(ap), len(bp)); i++ {
		x, y := part(ap, i), part(bp, i)
		if x != y {
			if x < y {
				return -1
			}
			return 1
		}
	}
	switch {
	case as == bs:
		return 0
	case as == "":
		return 1
	case bs == "":
		return -1
	case as < bs:
		return -1
	default:
		return 1
	}
}

func splitSuffix(v string) (string, string) {
	v = strings.TrimPrefix(strings.TrimSpace(v), "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		if v[i] == '+' { // build metadata does not order
			return v[:i], ""
		}
		return v[:i], v[i+1:]
	}
	return v, ""
}

func part(p []string, i int) int64 {
	if i >= len(p) {
		return 0
	}
	s := p[i]
	end := 0
	for end < len(s) && s[end] >= '0' && s[end] <= '9' {
		end++
	}
	n, _ := strconv.ParseInt(s[:end], 10, 64)
	return n
}
