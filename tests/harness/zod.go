package harness

import (
	"regexp"

	"github.com/getkin/kin-openapi/openapi3"
)

// jsRegexLiteral matches a JavaScript regex literal such as /^#[\da-f]{3}$/i.
var jsRegexLiteral = regexp.MustCompile(`^/(.*)/([a-z]*)$`)

// zodLiteral is how Logto's OpenAPI generator writes a zod literal: a string schema whose format
// is the quoted value, e.g. {"type":"string","format":"\"Session\""}.
var zodLiteral = regexp.MustCompile(`^"(.*)"$`)

// FixZodSchemas rewrites what Logto's generator writes from zod in doc's response schemas so
// that kin-openapi reads it as meant:
//   - a literal is a string schema whose format is the quoted value ({"format":"\"Session\""}):
//     kin-openapi ignores unknown formats, so a oneOf of literals (the service status "ready" |
//     "not_configured", the verification record types of a session) would match every option;
//     it becomes a one-value enum;
//   - a pattern is a JavaScript regex literal (slashes and flags included), which kin-openapi
//     would read as literal slashes; it becomes the bare pattern.
func FixZodSchemas(doc *openapi3.T) {
	seen := map[*openapi3.Schema]bool{}
	var walk func(ref *openapi3.SchemaRef)
	walk = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if m := zodLiteral.FindStringSubmatch(s.Format); m != nil && s.Type.Is("string") {
			s.Format, s.Enum = "", []any{m[1]}
		}
		if m := jsRegexLiteral.FindStringSubmatch(s.Pattern); m != nil {
			s.Pattern = m[1]
			if m[2] == "i" {
				s.Pattern = "(?i)" + m[1]
			}
		}
		for _, p := range s.Properties {
			walk(p)
		}
		for _, refs := range []openapi3.SchemaRefs{s.AllOf, s.AnyOf, s.OneOf} {
			for _, r := range refs {
				walk(r)
			}
		}
		walk(s.Items)
		walk(s.Not)
		walk(s.AdditionalProperties.Schema)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, resp := range op.Responses.Map() {
				if resp.Value == nil {
					continue
				}
				for _, mt := range resp.Value.Content {
					walk(mt.Schema)
				}
			}
		}
	}
}
