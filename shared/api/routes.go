package api

import "net/http"

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

// Route is one entry of the route table.
type Route struct {
	Method  string
	Path    string // net/http ServeMux pattern path
	Group   Group
	Handler func(*Server, http.ResponseWriter, *http.Request)
}

// Pattern is the ServeMux pattern "METHOD /path".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// Routes is the single route table of the whole product.
func Routes() []Route {
	rs := []Route{
		// Management API (manage.go)
		{"GET", "/v1/apps", GroupAdmin, (*Server).listApps},
		{"POST", "/v1/apps", GroupAdmin, (*Server).createApp},
		{"GET", "/v1/apps/{app}", GroupAdmin, (*Server).getApp},
		{"PATCH", "/v1/apps/{app}", GroupAdmin, (*Server).updateApp},
		{"GET", "/v1/apps/{app}/releases", GroupAdmin, (*Server).listReleases},
		{"POST", "/v1/apps/{app}/releases", GroupUpload, (*Server).createRelease},
		{"POST", "/v1/apps/{app}/releases/{version}/complete", GroupUpload, (*Server).completeRelease},
		{"GET", "/v1/apps/{app}/releases/{version}", GroupAdmin, (*Server).getRelease},
		{"DELETE", "/v1/apps/{app}/releases/{version}", GroupAdmin, (*Server).deleteRelease},
		{"GET", "/v1/apps/{app}/channels", GroupAdmin, (*Server).listChannels},
		{"GET", "/v1/apps/{app}/channels/{channel}", GroupAdmin, (*Server).getChannel},
		{"PUT", "/v1/apps/{app}/channels/{channel}", GroupAdmin, (*Server).setChannel},
		{"GET", "/v1/keys", GroupAdmin, (*Server).listKeys},
		{"POST", "/v1/keys", GroupAdmin, (*Server).createKey},
		{"DELETE", "/v1/keys/{id}", GroupAdmin, (*Server).revokeKey},

		// otad only
		{"GET", "/healthz", GroupLocal, (*Server).healthz},
		{"GET", "/dl/{key...}", GroupLocal, (*Server).localDownload},
		{"HEAD", "/dl/{key...}", GroupLocal, (*Server).localDownload},
		{"PUT", "/blob/{key...}", GroupLocal, (*Server).localUpload},
	}
	// Each protocol adapter lists its routes next to its handlers (one file per protocol).
	for _, adapter := range [][]Route{safetyRoutes(), retentionRoutes(), capgoRoutes(), nativeUpdateRoutes(), fluxRoutes(), seedRoutes(), checkDeviceRoutes(), deviceRoutes()} {
		rs = append(rs, adapter...)
	}
	return rs
}

// Handler mounts the routes of groups (all routes when none are given).
func (s *Server) Handler(groups ...Group) http.Handler {
	mux := http.NewServeMux()
	want := map[Group]bool{}
	for _, g := range groups {
		want[g] = true
	}
	for _, r := range Routes() {
		if len(groups) == 0 || want[r.Group] {
			h := r.Handler
			mux.HandleFunc(r.Pattern(), func(w http.ResponseWriter, req *http.Request) { h(s, w, req) })
		}
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "route_not_found", "no such route: "+r.Method+" "+r.URL.Path)
	})
	return s.middleware(mux)
}
