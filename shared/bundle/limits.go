package bundle

// Limits bound what Inspect accepts. A zero or negative field takes the
// DefaultLimits value, so a forgotten field never means "unlimited".
type Limits struct {
	MaxEntries int     // entries in the central directory, folders and litter included
	MaxTotal   int64   // uncompressed bytes of all files together
	MaxFile    int64   // uncompressed bytes of one file
	MaxRatio   float64 // uncompressed/compressed, per entry and for the whole archive
}

// ratioFloor is how many uncompressed bytes an entry (or the archive) may
// reach before MaxRatio applies: small files of zeros or repeated text
// legitimately deflate far beyond any sane ratio, bombs need volume.
const ratioFloor = 1 << 20

// DefaultLimits suits web bundles: generous for real apps, fatal for bombs.
func DefaultLimits() Limits {
	return Limits{
		MaxEntries: 20000,
		MaxTotal:   512 << 20,
		MaxFile:    256 << 20,
		MaxRatio:   200,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxEntries <= 0 {
		l.MaxEntries = d.MaxEntries
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = d.MaxTotal
	}
	if l.MaxFile <= 0 {
		l.MaxFile = d.MaxFile
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = d.MaxRatio
	}
	return l
}

// ratioExceeded reports whether usize bytes inflated from csize bytes break
// the ratio limit.
func (l Limits) ratioExceeded(usize, csize uint64) bool {
	if usize <= ratioFloor {
		return false
	}
	if csize == 0 {
		return true
	}
	return float64(usize)/float64(csize) > l.MaxRatio
}
