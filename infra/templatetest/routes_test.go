package templatetest

// Route conversion from the Go route table to API Gateway HTTP API routes, and the
// generator of the route events in template.yaml.

import (
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"unicode"

	"github.com/otakit/ota/shared/api"
)

// gatewayRoute is one HTTP API route.
type gatewayRoute struct {
	Method string // GET, POST, ..., or ANY
	Path   string // API Gateway path: {name} and greedy {name+}
}

func (r gatewayRoute) String() string { return r.Method + " " + r.Path }

var wildcardName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// gatewayPath converts a net/http ServeMux pattern path: {name} stays, {name...}
// becomes API Gateway's greedy {name+}. {$} (exact match of a trailing slash) has
// no API Gateway equivalent and is refused, as are partial-segment wildcards.
func gatewayPath(p string) (string, error) {
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%q: path must start with /", p)
	}
	segs := strings.Split(p[1:], "/")
	for i, s := range segs {
		if !strings.ContainsAny(s, "{}") {
			continue
		}
		if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}") {
			return "", fmt.Errorf("%q: wildcard must be a whole segment", p)
		}
		name := s[1 : len(s)-1]
		if name == "$" {
			return "", fmt.Errorf("%q: {$} has no API Gateway equivalent", p)
		}
		greedy := strings.HasSuffix(name, "...")
		name = strings.TrimSuffix(name, "...")
		if !wildcardName.MatchString(name) {
			return "", fmt.Errorf("%q: wildcard name %q is not usable in API Gateway", p, name)
		}
		if greedy {
			if i != len(segs)-1 {
				return "", fmt.Errorf("%q: {%s...} must be last", p, name)
			}
			segs[i] = "{" + name + "+}"
		} else {
			segs[i] = "{" + name + "}"
		}
	}
	return "/" + strings.Join(segs, "/"), nil
}

func gatewayRouteOf(r api.Route) (gatewayRoute, error) {
	p, err := gatewayPath(r.Path)
	if err != nil {
		return gatewayRoute{}, err
	}
	m := strings.ToUpper(r.Method)
	if m == "" {
		m = "ANY"
	}
	return gatewayRoute{Method: m, Path: p}, nil
}

// deployedRoutes is the route table without the otad-only routes, converted, in
// table order, with the group of each.
func deployedRoutes() ([]gatewayRoute, map[gatewayRoute]api.Group, error) {
	var order []gatewayRoute
	group := map[gatewayRoute]api.Group{}
	for _, r := range api.Routes() {
		if r.Group == api.GroupLocal {
			continue
		}
		g, err := gatewayRouteOf(r)
		if err != nil {
			return nil, nil, fmt.Errorf("route %s: %w", r.Pattern(), err)
		}
		if prev, dup := group[g]; dup {
			return nil, nil, fmt.Errorf("route %s is declared twice (groups %s and %s)", g, prev, r.Group)
		}
		group[g] = r.Group
		order = append(order, g)
	}
	return order, group, nil
}

// siblingConflicts finds path variables with different names at the same place
// after the same prefix (API Gateway builds one resource tree and refuses them).
func siblingConflicts(routes []gatewayRoute) []string {
	seen := map[string]string{} // normalized prefix -> variable name at the next segment
	var out []string
	for _, r := range routes {
		segs := strings.Split(strings.TrimPrefix(r.Path, "/"), "/")
		prefix := ""
		for _, s := range segs {
			if strings.HasPrefix(s, "{") {
				name := strings.TrimSuffix(strings.Trim(s, "{}"), "+")
				if prev, ok := seen[prefix]; ok && prev != name {
					out = append(out, fmt.Sprintf("%s: {%s} where another route has {%s}", r, name, prev))
				} else {
					seen[prefix] = name
				}
				prefix += "/{}"
				continue
			}
			prefix += "/" + s
		}
	}
	return out
}

// eventName is a CloudFormation-safe name for a route's event: method + path words.
func eventName(r gatewayRoute) string {
	var b strings.Builder
	b.WriteString(strings.ToUpper(r.Method[:1]) + strings.ToLower(r.Method[1:]))
	upper := true
	for _, c := range r.Path {
		if c < unicode.MaxASCII && (unicode.IsLetter(c) || unicode.IsDigit(c)) {
			if upper {
				c = unicode.ToUpper(c)
			}
			b.WriteRune(c)
			upper = false
			continue
		}
		if c == '+' {
			b.WriteString("Proxy")
		}
		upper = true
	}
	return b.String()
}

// generatedEvents is the YAML for one function's route events, indented by indent.
func generatedEvents(routes []gatewayRoute, indent string) []string {
	used := map[string]int{}
	var lines []string
	for _, r := range routes {
		name := eventName(r)
		used[name]++
		if n := used[name]; n > 1 {
			name = fmt.Sprintf("%s%d", name, n)
		}
		lines = append(lines,
			indent+name+":",
			indent+"  Type: HttpApi",
			indent+"  Properties:",
			indent+"    ApiId: !Ref HttpApi",
			indent+"    Method: "+r.Method,
			indent+"    Path: "+r.Path,
		)
	}
	return lines
}

// headTwins are the HEAD routes API Gateway needs for the GET routes (an HTTP API
// matches methods exactly), in route order, with the function of each.
func headTwins(order []gatewayRoute, fnOf map[gatewayRoute]string) []headRoute {
	var out []headRoute
	for _, r := range order {
		if r.Method == http.MethodGet {
			out = append(out, headRoute{gatewayRoute{Method: http.MethodHead, Path: r.Path}, fnOf[r]})
		}
	}
	return out
}

// headRoute is a HEAD route of the HttpApi's OpenAPI body and its function.
type headRoute struct {
	gatewayRoute
	Function string // logical id
}

// integrationURI is the Lambda proxy integration URI SAM writes for a function.
func integrationURI(function string) string {
	return "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${" + function + ".Arn}/invocations"
}

// generatedHeadPaths is the YAML of the OpenAPI paths for the HEAD routes, as SAM
// writes an event's route (path parameters declared: HTTP API import warns about
// undeclared ones, and the API fails on warnings).
func generatedHeadPaths(routes []headRoute, indent string) []string {
	var lines []string
	for _, r := range routes {
		lines = append(lines,
			indent+r.Path+":",
			indent+"  head:",
		)
		if params := pathParams.FindAllStringSubmatch(r.Path, -1); len(params) > 0 {
			lines = append(lines, indent+"    parameters:")
			for _, m := range params {
				lines = append(lines,
					indent+"      - name: "+m[1],
					indent+"        in: path",
					indent+"        required: true",
				)
			}
		}
		lines = append(lines,
			indent+"    responses: {}",
			indent+"    x-amazon-apigateway-integration:",
			indent+"      type: aws_proxy",
			indent+"      httpMethod: POST",
			indent+`      payloadFormatVersion: "2.0"`,
			indent+`      uri: !Sub "`+integrationURI(r.Function)+`"`,
		)
	}
	return lines
}

var pathParams = regexp.MustCompile(`\{([^}]+)\}`)

// rewriteGenerated replaces the lines between "# BEGIN GENERATED ROUTES <group>" and
// "# END GENERATED ROUTES <group>" with the generated events of each group, and those
// between "# BEGIN GENERATED HEAD ROUTES" and "# END GENERATED HEAD ROUTES" with the
// OpenAPI paths of the HEAD routes.
func rewriteGenerated(text string, byGroup map[api.Group][]gatewayRoute, heads []headRoute) (string, error) {
	lines := strings.Split(text, "\n")
	var out []string
	found := map[api.Group]bool{}
	foundHeads := false
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		out = append(out, line)
		trimmed := strings.TrimSpace(line)
		var end string
		var gen func(indent string) []string
		if g, ok := strings.CutPrefix(trimmed, "# BEGIN GENERATED ROUTES "); ok {
			group := api.Group(strings.TrimSpace(g))
			end = "# END GENERATED ROUTES " + string(group)
			gen = func(indent string) []string { return generatedEvents(byGroup[group], indent) }
			found[group] = true
		} else if trimmed == "# BEGIN GENERATED HEAD ROUTES" {
			end = "# END GENERATED HEAD ROUTES"
			gen = func(indent string) []string { return generatedHeadPaths(heads, indent) }
			foundHeads = true
		} else {
			continue
		}
		j := i + 1
		for j < len(lines) && strings.TrimSpace(lines[j]) != end {
			j++
		}
		if j == len(lines) {
			return "", fmt.Errorf("no %q after line %d", end, i+1)
		}
		indent := line[:len(line)-len(strings.TrimLeft(line, " "))]
		out = append(out, gen(indent)...)
		out = append(out, lines[j])
		i = j
	}
	for g := range byGroup {
		if !found[g] {
			return "", fmt.Errorf("template.yaml has no generated route section for group %s", g)
		}
	}
	if len(heads) > 0 && !foundHeads {
		return "", fmt.Errorf("template.yaml has no generated HEAD route section")
	}
	return strings.Join(out, "\n"), nil
}
