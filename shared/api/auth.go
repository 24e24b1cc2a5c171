package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/otakit/ota/shared/release"
	"github.com/otakit/ota/shared/store"
)

var (
	errUnauthorized = &badRequest{Status: http.StatusUnauthorized, Code: "unauthorized", Msg: "missing or invalid API key"}
	errForbidden    = &badRequest{Status: http.StatusForbidden, Code: "forbidden", Msg: "this API key may not do that"}
)

// maxAPIKey bounds the API key a request carries (header or path): secrets are 52
// characters, and a longer one is refused without being hashed or looked up.
const maxAPIKey = 256

// bearer returns the API key of a request: the Authorization header, or the path
// value "key" on routes that carry it in the URL (Flux cannot send headers).
func bearer(r *http.Request) string {
	if k := r.PathValue("key"); k != "" {
		return k
	}
	h := r.Header.Get("Authorization")
	if k, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(k)
	}
	return ""
}

// authKey checks the request's API key.
func (s *Server) authKey(r *http.Request) (store.APIKey, error) {
	secret := bearer(r)
	if secret == "" || len(secret) > maxAPIKey {
		return store.APIKey{}, errUnauthorized
	}
	k, err := s.Store.LookupKey(r.Context(), secret)
	if errors.Is(err, store.ErrNotFound) {
		return k, errUnauthorized
	}
	return k, err
}

// authApp checks that the request's key may act on app.
func (s *Server) authApp(r *http.Request, app string) (store.APIKey, error) {
	k, err := s.authKey(r)
	if err != nil {
		return k, err
	}
	if !k.Allows(app) {
		return k, errForbidden
	}
	return k, nil
}

// authAdmin checks that the request's key is an admin key.
func (s *Server) authAdmin(r *http.Request) (store.APIKey, error) {
	k, err := s.authKey(r)
	if err != nil {
		return k, err
	}
	if !k.Admin {
		return k, errForbidden
	}
	return k, nil
}

// audit records a management action; a failure to audit is logged, not fatal to the
// action already done.
func (s *Server) audit(ctx context.Context, k store.APIKey, app, action, target, detail string) {
	if err := s.Store.Audit(ctx, store.AuditEntry{AppID: app, KeyID: k.ID, Action: action, Target: target, Detail: detail}); err != nil {
		s.Log.Error("audit write failed", "action", action, "err", err)
	}
}

// authRoute checks the API key a route of kind auth demands and returns it (ok:
// there was one to check). On AuthKeyApp the {app} path value is validated first
// (400 invalid_app_id), and nothing is looked up but the key: an unauthorized
// caller learns nothing about which apps or versions exist.
func (s *Server) authRoute(r *http.Request, auth AuthKind) (k store.APIKey, ok bool, err error) {
	switch auth {
	case AuthNone:
		return k, false, nil
	case AuthDeviceToken:
		return k, false, s.cdRouteAuth(r) // a device token, not an API key
	case AuthFluxPathKey:
		if r.PathValue("key") == "" {
			return k, false, nil
		}
		if app := r.PathValue("appId"); app != "" {
			k, err = s.authApp(r, app)
		} else {
			k, err = s.authKey(r)
		}
	case AuthFluxUpload:
		k, err = s.authKey(r)
		if err == nil && len(k.Apps) == 0 {
			err = errUnauthorized // allows no app: no body could be accepted
		}
	case AuthKeyApp:
		id := r.PathValue("app")
		if err := release.ValidAppID(id); err != nil {
			return k, false, errBad("invalid_app_id", "%v", err)
		}
		k, err = s.authApp(r, id)
	case AuthKeyAdmin:
		k, err = s.authAdmin(r)
	default:
		k, err = s.authKey(r)
	}
	return k, err == nil, err
}

type keyCtxKey struct{}

func withKey(ctx context.Context, k store.APIKey) context.Context {
	return context.WithValue(ctx, keyCtxKey{}, k)
}

// keyFrom returns the API key Mount checked for this request. A handler of a route
// whose Auth checks no key gets errUnauthorized: a table mistake fails closed.
func keyFrom(ctx context.Context) (store.APIKey, error) {
	k, ok := ctx.Value(keyCtxKey{}).(store.APIKey)
	if !ok {
		return k, errUnauthorized
	}
	return k, nil
}
