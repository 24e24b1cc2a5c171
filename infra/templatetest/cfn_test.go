package templatetest

// A small CloudFormation model for tests: template.yaml decoded with yaml.v3 into
// plain maps and slices (short-form tags such as !Ref and !Sub become their long
// forms), a walker over references, and an evaluator that resolves intrinsic
// functions with fake pseudo parameters so ARNs and names can be compared as strings.

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// cfnTemplate is a decoded template.
type cfnTemplate struct {
	Raw        map[string]any
	Parameters map[string]map[string]any
	Conditions map[string]any
	Rules      map[string]any
	Mappings   map[string]any
	Resources  map[string]map[string]any
	Outputs    map[string]map[string]any
	Globals    map[string]any
}

func loadTemplate(path string) (*cfnTemplate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseTemplate(b)
}

func parseTemplate(b []byte) (*cfnTemplate, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return nil, err
	}
	v, err := fromNode(&n)
	if err != nil {
		return nil, err
	}
	raw, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template is not a mapping")
	}
	t := &cfnTemplate{Raw: raw, Parameters: map[string]map[string]any{}, Resources: map[string]map[string]any{},
		Outputs: map[string]map[string]any{}}
	for _, sec := range []struct {
		name string
		into map[string]map[string]any
	}{{"Parameters", t.Parameters}, {"Resources", t.Resources}, {"Outputs", t.Outputs}} {
		m, _ := raw[sec.name].(map[string]any)
		for k, v := range m {
			mv, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%s.%s is not a mapping", sec.name, k)
			}
			sec.into[k] = mv
		}
	}
	t.Conditions, _ = raw["Conditions"].(map[string]any)
	t.Rules, _ = raw["Rules"].(map[string]any)
	t.Mappings, _ = raw["Mappings"].(map[string]any)
	t.Globals, _ = raw["Globals"].(map[string]any)
	return t, nil
}

// fromNode converts a YAML node; CloudFormation short-form tags become long forms.
func fromNode(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return fromNode(n.Content[0])
	case yaml.AliasNode:
		return fromNode(n.Alias)
	}
	if tag := n.Tag; strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") {
		plain := *n
		plain.Tag = ""
		plain.Style &^= yaml.TaggedStyle
		inner, err := fromNode(&plain)
		if err != nil {
			return nil, err
		}
		name := tag[1:]
		switch name {
		case "Ref", "Condition":
			return map[string]any{name: inner}, nil
		case "GetAtt":
			if s, ok := inner.(string); ok {
				res, attr, found := strings.Cut(s, ".")
				if !found {
					return nil, fmt.Errorf("line %d: !GetAtt %q has no attribute", n.Line, s)
				}
				inner = []any{res, attr}
			}
			return map[string]any{"Fn::GetAtt": inner}, nil
		default:
			return map[string]any{"Fn::" + name: inner}, nil
		}
	}
	switch n.Kind {
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: duplicate key %q", n.Content[i].Line, k)
			}
			v, err := fromNode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		return m, nil
	case yaml.SequenceNode:
		s := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := fromNode(c)
			if err != nil {
				return nil, err
			}
			s = append(s, v)
		}
		return s, nil
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return nil, nil
		}
		return n.Value, nil
	}
	return nil, fmt.Errorf("line %d: unexpected YAML node kind %v", n.Line, n.Kind)
}

// intrinsic returns the function name and argument of a one-key intrinsic mapping.
func intrinsic(v any) (string, any, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", nil, false
	}
	for k, a := range m {
		if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
			return k, a, true
		}
	}
	return "", nil, false
}

var pseudoParameters = map[string]bool{
	"AWS::AccountId": true, "AWS::NotificationARNs": true, "AWS::NoValue": true, "AWS::Partition": true,
	"AWS::Region": true, "AWS::StackId": true, "AWS::StackName": true, "AWS::URLSuffix": true,
}

// subVar matches ${Name} and ${Resource.Attr}; ${!Literal} is not a variable.
var subVar = regexp.MustCompile(`\$\{([^!}][^}]*)\}`)

// reference is one use of a parameter, resource, pseudo parameter or condition.
type reference struct {
	Kind   string // "Ref", "GetAtt", "Sub", "Condition", "DependsOn"
	Target string // logical id, parameter or pseudo parameter, or condition name
	Attr   string // GetAtt attribute (also ${X.Attr} in Sub)
	Where  string // path in the template
	// Conds are the conditions known true here (enclosing Fn::If true branches and
	// the resource's own Condition).
	Conds []string
}

// references lists every reference inside v.
func references(v any, where string, conds []string) []reference {
	var out []reference
	var walk func(v any, where string, conds []string)
	walk = func(v any, where string, conds []string) {
		if fn, arg, ok := intrinsic(v); ok {
			switch fn {
			case "Ref":
				s, _ := arg.(string)
				out = append(out, reference{Kind: "Ref", Target: s, Where: where, Conds: conds})
				return
			case "Condition":
				s, _ := arg.(string)
				out = append(out, reference{Kind: "Condition", Target: s, Where: where, Conds: conds})
				return
			case "Fn::GetAtt":
				var parts []string
				if l, ok := arg.([]any); ok {
					for _, p := range l {
						s, _ := p.(string)
						parts = append(parts, s)
					}
				}
				r := reference{Kind: "GetAtt", Where: where, Conds: conds}
				if len(parts) > 0 {
					r.Target = parts[0]
				}
				if len(parts) > 1 {
					r.Attr = strings.Join(parts[1:], ".")
				}
				out = append(out, r)
				return
			case "Fn::Sub":
				var tmpl string
				locals := map[string]bool{}
				switch a := arg.(type) {
				case string:
					tmpl = a
				case []any:
					if len(a) > 0 {
						tmpl, _ = a[0].(string)
					}
					if len(a) > 1 {
						vars, _ := a[1].(map[string]any)
						for k, val := range vars {
							locals[k] = true
							walk(val, where+".Fn::Sub."+k, conds)
						}
					}
				}
				for _, m := range subVar.FindAllStringSubmatch(tmpl, -1) {
					name := strings.TrimSpace(m[1])
					if locals[name] {
						continue
					}
					target, attr, _ := strings.Cut(name, ".")
					if pseudoParameters[name] {
						target, attr = name, ""
					}
					out = append(out, reference{Kind: "Sub", Target: target, Attr: attr, Where: where, Conds: conds})
				}
				return
			case "Fn::If":
				l, _ := arg.([]any)
				if len(l) == 3 {
					c, _ := l[0].(string)
					out = append(out, reference{Kind: "Condition", Target: c, Where: where, Conds: conds})
					walk(l[1], where+".Fn::If[true]", append(append([]string(nil), conds...), c))
					walk(l[2], where+".Fn::If[false]", conds)
					return
				}
			}
		}
		switch x := v.(type) {
		case map[string]any:
			for _, k := range sortedKeys(x) {
				walk(x[k], where+"."+k, conds)
			}
		case []any:
			for i, e := range x {
				walk(e, fmt.Sprintf("%s[%d]", where, i), conds)
			}
		}
	}
	walk(v, where, conds)
	return out
}

// samReferenceProperties are the resources SAM generates that a template may Ref as
// <logical id>.<property>, per SAM resource type.
var samReferenceProperties = map[string][]string{
	"AWS::Serverless::HttpApi":  {"Stage", "DomainName"},
	"AWS::Serverless::Function": {"Alias", "Version", "DestinationQueue", "DestinationTopic"},
}

// samReferenceable tells whether res.prop is a SAM referenceable property.
func samReferenceable(t *cfnTemplate, res, prop string) bool {
	r, ok := t.Resources[res]
	if !ok {
		return false
	}
	typ, _ := r["Type"].(string)
	for _, p := range samReferenceProperties[typ] {
		if p == prop {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// evaluator resolves intrinsic functions to strings for one set of parameter values
// and fake pseudo parameters.
type evaluator struct {
	t      *cfnTemplate
	params map[string]string
	pseudo map[string]string
	// refs and atts give resources' Ref and GetAtt values; missing ones evaluate to
	// "<Logical>" and "<Logical.Attr>".
	refs map[string]string
	atts map[string]string
}

const (
	fakeStackGUID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
	fakeStackID   = "arn:aws:cloudformation:us-east-1:123456789012:stack/otakit/" + fakeStackGUID
)

func newEvaluator(t *cfnTemplate, overrides map[string]string) *evaluator {
	e := &evaluator{t: t, params: map[string]string{}, refs: map[string]string{}, atts: map[string]string{},
		pseudo: map[string]string{
			"AWS::AccountId": "123456789012", "AWS::Partition": "aws", "AWS::Region": "us-east-1",
			"AWS::StackId": fakeStackID, "AWS::StackName": "otakit", "AWS::URLSuffix": "amazonaws.com",
		}}
	for name, p := range t.Parameters {
		if d, ok := p["Default"].(string); ok {
			e.params[name] = d
		}
	}
	for k, v := range overrides {
		e.params[k] = v
	}
	return e
}

// noValue is what AWS::NoValue evaluates to.
type noValue struct{}

// condition evaluates a named condition.
func (e *evaluator) condition(name string) (bool, error) {
	c, ok := e.t.Conditions[name]
	if !ok {
		return false, fmt.Errorf("unknown condition %q", name)
	}
	return e.boolean(c)
}

func (e *evaluator) boolean(v any) (bool, error) {
	fn, arg, ok := intrinsic(v)
	if !ok {
		return false, fmt.Errorf("condition %v is not a condition function", v)
	}
	l, _ := arg.([]any)
	switch fn {
	case "Condition":
		s, _ := arg.(string)
		return e.condition(s)
	case "Fn::Equals":
		if len(l) != 2 {
			return false, fmt.Errorf("Fn::Equals needs 2 arguments")
		}
		a, err := e.str(l[0])
		if err != nil {
			return false, err
		}
		b, err := e.str(l[1])
		return a == b, err
	case "Fn::Not":
		if len(l) != 1 {
			return false, fmt.Errorf("Fn::Not needs 1 argument")
		}
		b, err := e.boolean(l[0])
		return !b, err
	case "Fn::And", "Fn::Or":
		res := fn == "Fn::And"
		for _, c := range l {
			b, err := e.boolean(c)
			if err != nil {
				return false, err
			}
			if fn == "Fn::And" {
				res = res && b
			} else {
				res = res || b
			}
		}
		return res, nil
	}
	return false, fmt.Errorf("%s is not a condition function", fn)
}

// eval resolves v: strings, slices and maps come back with every intrinsic resolved.
func (e *evaluator) eval(v any) (any, error) {
	if fn, arg, ok := intrinsic(v); ok {
		switch fn {
		case "Ref":
			s, _ := arg.(string)
			if s == "AWS::NoValue" {
				return noValue{}, nil
			}
			if p, ok := e.pseudo[s]; ok {
				return p, nil
			}
			if p, ok := e.params[s]; ok {
				return p, nil
			}
			if _, ok := e.t.Parameters[s]; ok {
				return nil, fmt.Errorf("parameter %s has no default and no value", s)
			}
			if r, ok := e.refs[s]; ok {
				return r, nil
			}
			if _, ok := e.t.Resources[s]; ok {
				return "<" + s + ">", nil
			}
			if res, prop, ok := strings.Cut(s, "."); ok && samReferenceable(e.t, res, prop) {
				return "<" + s + ">", nil
			}
			return nil, fmt.Errorf("Ref to unknown %q", s)
		case "Fn::GetAtt":
			l, _ := arg.([]any)
			if len(l) != 2 {
				return nil, fmt.Errorf("Fn::GetAtt needs 2 arguments")
			}
			res, _ := l[0].(string)
			attr, err := e.str(l[1])
			if err != nil {
				return nil, err
			}
			if a, ok := e.atts[res+"."+attr]; ok {
				return a, nil
			}
			return "<" + res + "." + attr + ">", nil
		case "Fn::Sub":
			var tmpl string
			vars := map[string]string{}
			switch a := arg.(type) {
			case string:
				tmpl = a
			case []any:
				if len(a) != 2 {
					return nil, fmt.Errorf("Fn::Sub list form needs 2 elements")
				}
				tmpl, _ = a[0].(string)
				m, _ := a[1].(map[string]any)
				for k, val := range m {
					s, err := e.str(val)
					if err != nil {
						return nil, err
					}
					vars[k] = s
				}
			default:
				return nil, fmt.Errorf("bad Fn::Sub")
			}
			var firstErr error
			out := subVar.ReplaceAllStringFunc(tmpl, func(m string) string {
				name := strings.TrimSpace(m[2 : len(m)-1])
				if v, ok := vars[name]; ok {
					return v
				}
				var expr any = map[string]any{"Ref": name}
				if res, attr, ok := strings.Cut(name, "."); ok && !pseudoParameters[name] {
					expr = map[string]any{"Fn::GetAtt": []any{res, attr}}
				}
				s, err := e.str(expr)
				if err != nil && firstErr == nil {
					firstErr = err
				}
				return s
			})
			return strings.ReplaceAll(out, "${!", "${"), firstErr
		case "Fn::Select":
			l, _ := arg.([]any)
			if len(l) != 2 {
				return nil, fmt.Errorf("Fn::Select needs 2 arguments")
			}
			is, err := e.str(l[0])
			if err != nil {
				return nil, err
			}
			var i int
			if _, err := fmt.Sscan(is, &i); err != nil {
				return nil, fmt.Errorf("Fn::Select index %q", is)
			}
			lst, err := e.eval(l[1])
			if err != nil {
				return nil, err
			}
			items, ok := lst.([]any)
			if !ok || i < 0 || i >= len(items) {
				return nil, fmt.Errorf("Fn::Select index %d out of range", i)
			}
			return items[i], nil
		case "Fn::Split":
			l, _ := arg.([]any)
			if len(l) != 2 {
				return nil, fmt.Errorf("Fn::Split needs 2 arguments")
			}
			sep, _ := l[0].(string)
			s, err := e.str(l[1])
			if err != nil {
				return nil, err
			}
			var out []any
			for _, p := range strings.Split(s, sep) {
				out = append(out, p)
			}
			return out, nil
		case "Fn::Join":
			l, _ := arg.([]any)
			if len(l) != 2 {
				return nil, fmt.Errorf("Fn::Join needs 2 arguments")
			}
			sep, _ := l[0].(string)
			lst, err := e.eval(l[1])
			if err != nil {
				return nil, err
			}
			items, _ := lst.([]any)
			var parts []string
			for _, it := range items {
				s, ok := it.(string)
				if !ok {
					return nil, fmt.Errorf("Fn::Join of a non-string")
				}
				parts = append(parts, s)
			}
			return strings.Join(parts, sep), nil
		case "Fn::FindInMap":
			l, _ := arg.([]any)
			if len(l) != 3 {
				return nil, fmt.Errorf("Fn::FindInMap needs 3 arguments")
			}
			var keys [3]string
			for i, k := range l {
				s, err := e.str(k)
				if err != nil {
					return nil, err
				}
				keys[i] = s
			}
			m, _ := e.t.Mappings[keys[0]].(map[string]any)
			top, _ := m[keys[1]].(map[string]any)
			v, ok := top[keys[2]]
			if !ok {
				return nil, fmt.Errorf("Fn::FindInMap: no %s.%s.%s", keys[0], keys[1], keys[2])
			}
			return e.eval(v)
		case "Fn::If":
			l, _ := arg.([]any)
			if len(l) != 3 {
				return nil, fmt.Errorf("Fn::If needs 3 arguments")
			}
			c, _ := l[0].(string)
			b, err := e.condition(c)
			if err != nil {
				return nil, err
			}
			if b {
				return e.eval(l[1])
			}
			return e.eval(l[2])
		default:
			return nil, fmt.Errorf("evaluator: %s is not supported", fn)
		}
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			r, err := e.eval(val)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k, err)
			}
			if _, skip := r.(noValue); !skip {
				out[k] = r
			}
		}
		return out, nil
	case []any:
		out := make([]any, 0, len(x))
		for _, val := range x {
			r, err := e.eval(val)
			if err != nil {
				return nil, err
			}
			if _, skip := r.(noValue); !skip {
				out = append(out, r)
			}
		}
		return out, nil
	}
	return v, nil
}

// str evaluates v to a string.
func (e *evaluator) str(v any) (string, error) {
	r, err := e.eval(v)
	if err != nil {
		return "", err
	}
	s, ok := r.(string)
	if !ok {
		return "", fmt.Errorf("%v does not evaluate to a string", v)
	}
	return s, nil
}

// strings evaluates a string or a list of strings.
func (e *evaluator) strs(v any) ([]string, error) {
	r, err := e.eval(v)
	if err != nil {
		return nil, err
	}
	switch x := r.(type) {
	case string:
		return []string{x}, nil
	case []any:
		var out []string
		for _, it := range x {
			s, ok := it.(string)
			if !ok {
				return nil, fmt.Errorf("%v is not a string", it)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%v is neither a string nor a list", v)
}
