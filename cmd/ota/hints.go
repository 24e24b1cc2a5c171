package main

import (
	"fmt"
	"net/url"
	"strings"
)

// nextStep says, for a refusal the user can fix, which thing is missing or wrong
// and the command that fixes it. The names come from the request path, so the
// advice holds whichever command made the call. "" when there is nothing to add.
func nextStep(code, path string) string {
	p := apiPath(path)
	switch code {
	case "app_not_found":
		if p.app != "" {
			return fmt.Sprintf("app %s does not exist on this server; create it: ota app create %s", p.app, p.app)
		}
	case "release_not_found", "version_not_found":
		if p.app != "" && p.version != "" {
			return fmt.Sprintf("app %s has no release %s; see its releases: ota releases --app %s", p.app, p.version, p.app)
		}
		if p.app != "" {
			return fmt.Sprintf("see the releases of %s: ota releases --app %s", p.app, p.app)
		}
	case "channel_not_found":
		if p.app != "" && p.channel != "" {
			return fmt.Sprintf("app %s has no channel %s; create it: ota channel set %s --app %s --version VERSION", p.app, p.channel, p.channel, p.app)
		}
	case "unauthorized":
		return "the server does not accept this API key; check --key or OTA_API_KEY, or run ota login"
	}
	return ""
}

// pathNames are the names in a management API path
// (/v1/apps/{app}/releases/{version}, /v1/apps/{app}/channels/{channel}/...).
type pathNames struct{ app, version, channel string }

func apiPath(path string) pathNames {
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	seg := strings.Split(strings.Trim(path, "/"), "/")
	var p pathNames
	for i := 0; i+1 < len(seg); i++ {
		v, err := url.PathUnescape(seg[i+1])
		if err != nil {
			v = seg[i+1]
		}
		switch seg[i] {
		case "apps":
			p.app = v
		case "releases", "bundles":
			p.version = v
		case "channels":
			p.channel = v
		}
	}
	return p
}
