package devcore

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/accountedge/caddy-account-api/tests/harness"
)

// managementRouter routes requests to operations of Logto's Management API document.
func managementRouter(t *testing.T) routers.Router {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(referencePath(t, "logto-management-api.openapi.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The document names Logto's own address; without servers the router matches on the path
	// alone, whatever port the test server has.
	doc.Servers = nil
	harness.FixZodSchemas(doc)
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return router
}

// TestManagementResponsesMatchOpenAPI validates the dev core's answers against Logto's own
// Management API document with kin-openapi.
func TestManagementResponsesMatchOpenAPI(t *testing.T) {
	router := managementRouter(t)

	tc := newTestCore(t)
	tok := tc.m2mToken()
	// Give the demo user a profile with an address and an identity, so the schema sees them.
	tc.do(http.MethodPut, "/api/users/"+DemoUserID+"/identities/mock-social", tok,
		map[string]any{"userId": "s1", "details": map[string]any{"id": "s1"}})

	calls := []struct {
		method, path string
		body         any
		status       int
	}{
		{http.MethodGet, "/api/users/" + DemoUserID, nil, 200},
		{http.MethodGet, "/api/users/" + DemoUserID + "?includeSsoIdentities=true", nil, 200},
		{http.MethodPatch, "/api/users/" + DemoUserID, map[string]any{"customData": map[string]int{"n": 1}, "name": "Ada"}, 200},
		{http.MethodPatch, "/api/users/" + DemoUserID + "/profile",
			map[string]any{"profile": map[string]any{"nickname": "ada", "address": map[string]string{"country": "UK"}}}, 200},
		{http.MethodPatch, "/api/users/" + DemoUserID + "/password", map[string]string{"password": "x"}, 200},
		{http.MethodPost, "/api/users/" + DemoUserID + "/password/verify", map[string]string{"password": "x"}, 204},
		{http.MethodPost, "/api/users", map[string]string{"username": "created"}, 200},
		{http.MethodGet, "/api/account-center", nil, 200},
		{http.MethodPatch, "/api/account-center", map[string]any{"enabled": true}, 200},
		{http.MethodGet, "/api/sign-in-exp", nil, 200},
		{http.MethodGet, "/api/applications/" + DemoAppID, nil, 200},
		{http.MethodGet, "/api/applications/" + DefaultClientID, nil, 200},
		{http.MethodPut, "/api/users/" + DemoUserID + "/identities/other-social", map[string]string{"userId": "s2"}, 201},
		{http.MethodDelete, "/api/users/" + DemoUserID + "/identities/other-social", nil, 200},
		// Errors.
		{http.MethodGet, "/api/users/nope", nil, 404},
		{http.MethodPatch, "/api/users/nope", map[string]string{"name": "x"}, 404},
		{http.MethodPatch, "/api/users/nope/profile", map[string]any{"profile": map[string]any{}}, 404},
		{http.MethodPost, "/api/users/nope/password/verify", map[string]string{"password": "x"}, 404},
		{http.MethodGet, "/api/applications/nope", nil, 404},
		{http.MethodPost, "/api/users/" + DemoUserID + "/password/verify", map[string]string{"password": "wrong"}, 422},
		{http.MethodPatch, "/api/users/" + DemoUserID, map[string]string{"username": OtherUsername}, 422},
	}
	for _, c := range calls {
		req := tc.request(c.method, c.path, tok, c.body)
		resp := tc.send(req)
		if resp.status != c.status {
			t.Errorf("%s %s: status %d, want %d: %s", c.method, c.path, resp.status, c.status, resp.body)
			continue
		}
		validateManagementResponse(t, router, req, resp)
	}
}

// validateManagementResponse fails the test when the dev core's answer to req is not what the
// Management API document says.
func validateManagementResponse(t *testing.T, router routers.Router, req *http.Request, resp response) {
	t.Helper()
	route, params, err := router.FindRoute(req)
	if err != nil {
		t.Errorf("%s %s: not in the document: %v", req.Method, req.URL.Path, err)
		return
	}
	input := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 resp.status,
		Header:                 resp.header,
		Body:                   io.NopCloser(bytes.NewReader(resp.body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), input); err != nil {
		t.Errorf("%s %s -> %d does not match the document: %v\n%s", req.Method, req.URL.Path, resp.status, err, resp.body)
	}
}
