package api

import (
	"net/http"
	"slices"
)

// Group is the Lambda function a route belongs to. otad mounts every group; each
// Lambda mounts its own; template.yaml declares the same routes (checked by a test).
type Group string

const (
	GroupCheck   Group = "check"   // device update checks and download redirects (read-only, hot path)
	GroupConfirm Group = "confirm" // device-reported install outcomes and device channel choice
	GroupStats   Group = "stats"   // device statistics
	GroupUpload  Group = "upload"  // release creation and uploads (API key)
	GroupAdmin   Group = "admin"   // management API (API key)
	GroupLocal   Group = "local"   // otad only: signed downloads/uploads from the local folder, health
)

// AuthKind is what a route demands of its caller. It is declared in the route table
// so that every route's rule is visible in one place and a test can walk them all.
type AuthKind int

const (
	// AuthNone: device routes, open to anyone (devices carry no secret).
	AuthNone AuthKind = iota
	// AuthDeviceToken: a protected app (one with a device token) answers only to
	// "Authorization: Bearer <device token>" (check-device; cdRouteAuth).
	AuthDeviceToken
	// AuthFluxPathKey: Flux's read rule. Under /flux/k/{key} the key in the path
	// must allow {appId} (any valid key where there is none: health); the plain
	// /flux mount is open (devices send nothing). Refusals take Flux's error shape.
	AuthFluxPathKey
	// AuthFluxUpload: a Flux upload needs a valid key allowing some app, from the
	// Authorization header or the /flux/k/{key} path; {appId} is in the body, so the
	// handler checks the key's scope once it has read it. Flux's error shape.
	AuthFluxUpload
	// AuthKey: any valid API key (listing apps filters by the key's scope).
	AuthKey
	// AuthKeyApp: an API key allowed for the route's {app} path value.
	AuthKeyApp
	// AuthKeyAdmin: an admin API key.
	AuthKeyAdmin
)

var authKindNames = [...]string{"none", "deviceToken", "fluxPathKey", "fluxUpload", "apiKey", "apiKeyApp", "apiKeyAdmin"}

func (k AuthKind) String() string {
	if k >= 0 && int(k) < len(authKindNames) {
		return authKindNames[k]
	}
	return "AuthKind(?)"
}

// NeedsAPIKey reports whether every request of the route must carry an API key in
// its Authorization header (the management API's rule).
func (k AuthKind) NeedsAPIKey() bool { return k >= AuthKey }

// flux reports whether refusals take Flux's error shape.
func (k AuthKind) flux() bool { return k == AuthFluxPathKey || k == AuthFluxUpload }

// Route is one entry of the route table.
type Route struct {
	Method  string
	Path    string // net/http ServeMux pattern path
	Group   Group
	Handler func(*Server, http.ResponseWriter, *http.Request)
	Auth    AuthKind
}

// Pattern is the ServeMux pattern "METHOD /path".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// The route table is built per group so that each Lambda links only its own handlers:
// the linker keeps every function a reachable function mentions, so a Lambda that
// mounts CheckRoutes() carries the check handlers and none of the others. Keep it
// that way: each protocol adapter lists its routes next to its handlers (one file per
// protocol) in one function per group, and a function reachable from a Lambda
// (CheckRoutes and what it calls, ...) never mentions another group's handlers.

// Routes is the single route table of the whole product: every group's routes.
// otad mounts them all; template.yaml declares the deployed ones (checked by a test).
func Routes() []Route {
	return concatRoutes(CheckRoutes(), ConfirmRoutes(), StatsRoutes(), UploadRoutes(), AdminRoutes(), localRoutes())
}

// CheckRoutes are the routes of GroupCheck (device update checks and downloads).
func CheckRoutes() []Route {
	return concatRoutes(capgoCheckRoutes(), nativeUpdateCheckRoutes(), fluxCheckRoutes(), seedCheckRoutes(), checkDeviceCheckRoutes())
}

// ConfirmRoutes are the routes of GroupConfirm (install outcomes, device channel choice).
func ConfirmRoutes() []Route {
	return concatRoutes(capgoConfirmRoutes(), nativeUpdateConfirmRoutes(), deviceConfirmRoutes())
}

// StatsRoutes are the routes of GroupStats (device statistics).
func StatsRoutes() []Route {
	return capgoStatsRoutes()
}

// UploadRoutes are the routes of GroupUpload (release creation and uploads).
func UploadRoutes() []Route {
	return concatRoutes(manageUploadRoutes(), fluxUploadRoutes())
}

// AdminRoutes are the routes of GroupAdmin (management API).
func AdminRoutes() []Route {
	return concatRoutes(manageAdminRoutes(), safetyAdminRoutes(), retentionAdminRoutes())
}

func concatRoutes(lists ...[]Route) []Route {
	var rs []Route
	for _, l := range lists {
		rs = append(rs, l...)
	}
	return rs
}

// Handler mounts the routes of groups (all routes when none are given). It
// references every handler: the Lambdas use Mount with their group's routes.
func (s *Server) Handler(groups ...Group) http.Handler {
	if len(groups) == 0 {
		return s.Mount(Routes())
	}
	var rs []Route
	for _, r := range Routes() {
		if slices.Contains(groups, r.Group) {
			rs = append(rs, r)
		}
	}
	return s.Mount(rs)
}

// Mount serves routes (an unknown route answers 404 route_not_found), behind the
// logging and panic-recovery middleware. A route's API key (Auth) is checked here,
// before its handler runs and so before any body is read; the handler finds the key
// with keyFrom.
func (s *Server) Mount(routes []Route) http.Handler {
	mux := http.NewServeMux()
	for _, r := range routes {
		h, auth := r.Handler, r.Auth
		fail := s.writeErr
		switch {
		case auth.flux():
			fail = s.fluxFail
		case auth == AuthDeviceToken:
			fail = s.cdAuthError
		}
		mux.HandleFunc(r.Pattern(), func(w http.ResponseWriter, req *http.Request) {
			k, ok, err := s.authRoute(req, auth)
			if err != nil {
				fail(w, req, err)
				return
			}
			if ok {
				req = req.WithContext(withKey(req.Context(), k))
			}
			h(s, w, req)
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "route_not_found", "no such route: "+r.Method+" "+r.URL.Path)
	})
	return s.middleware(mux)
}
