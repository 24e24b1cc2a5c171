package api

import (
	"regexp"
	"strconv"
)

// capgoPluginVersion is a plugin_version as Capgo's backend reads it: strict semver. Channel
// storage and key ids both depend on the plugin line a device runs.
type capgoPluginVersion struct {
	major, minor, patch int
	pre                 bool // a pre-release ("8.0.0-alpha.1") sorts below its release
}

var capgoSemverRe = regexp.MustCompile(`^v?(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})\.(0|[1-9][0-9]{0,8})(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$`)

// parseCapgoPlugin reads a plugin_version; false when it is not strict semver.
func parseCapgoPlugin(s string) (capgoPluginVersion, bool) {
	m := capgoSemverRe.FindStringSubmatch(s)
	if m == nil {
		return capgoPluginVersion{}, false
	}
	var n [3]int
	for i := range n {
		n[i], _ = strconv.Atoi(m[i+1]) // at most 9 digits: always fits
	}
	return capgoPluginVersion{major: n[0], minor: n[1], patch: n[2], pre: m[4] != ""}, true
}
