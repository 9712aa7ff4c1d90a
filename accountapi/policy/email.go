package policy

import (
	"net/http"
	"path"
	"strings"

	"github.com/accountedge/caddy-account-api/accountapi/apierror"
	"github.com/accountedge/caddy-account-api/accountapi/identitycore"
)

// CheckEmail applies Logto NOW's emailBlocklistPolicy (reference §6) to an email the user wants
// to receive a code at or make primary: no domain → 400 invalid_email; a "+" in the local part
// when subaddressing is blocked → 422; a non-empty allowlist that does not match, or a
// blocklist entry that does → 422 email_not_allowed. Entries are whole addresses or "@domain",
// may use "*" wildcards, match case-insensitively, and treat gmail.com and googlemail.com as one
// domain whose local parts ignore dots. Disposable-address blocking is a Logto Cloud service
// and is not applied.
func CheckEmail(email string, p identitycore.EmailBlocklistPolicy) error {
	local, domain, ok := strings.Cut(email, "@")
	if !ok || domain == "" {
		return apierror.InvalidEmail
	}
	if p.BlockSubaddressing && strings.Contains(local, "+") {
		return apierror.SubaddressingRejected
	}
	notAllowed := apierror.Interpolated(http.StatusUnprocessableEntity, "session.email_blocklist.email_not_allowed",
		map[string]string{"email": email})
	if len(p.CustomAllowlist) > 0 && !listMatches(p.CustomAllowlist, email) {
		return notAllowed
	}
	if listMatches(p.CustomBlocklist, email) {
		return notAllowed
	}
	return nil
}

func listMatches(list []string, email string) bool {
	e := canonicalEmail(email)
	_, domain, _ := strings.Cut(e, "@")
	for _, item := range list {
		item = strings.ToLower(strings.TrimSpace(item))
		if item == "" {
			continue
		}
		if d, isDomain := strings.CutPrefix(item, "@"); isDomain {
			if wildcard(canonicalDomain(d), domain) {
				return true
			}
			continue
		}
		if wildcard(canonicalEmail(item), e) {
			return true
		}
	}
	return false
}

// canonicalEmail lowercases an address and folds Gmail's equivalences.
func canonicalEmail(email string) string {
	local, domain, _ := strings.Cut(strings.ToLower(email), "@")
	domain = canonicalDomain(domain)
	if domain == "gmail.com" {
		local = strings.ReplaceAll(local, ".", "")
	}
	return local + "@" + domain
}

func canonicalDomain(d string) string {
	if d == "googlemail.com" {
		return "gmail.com"
	}
	return d
}

// wildcard matches value against pattern, where "*" stands for any run of characters. Other
// glob metacharacters are taken literally.
func wildcard(pattern, value string) bool {
	if !strings.Contains(pattern, "*") {
		return pattern == value
	}
	escaped := strings.NewReplacer(`\`, `\\`, "?", `\?`, "[", `\[`).Replace(pattern)
	// path.Match's * stops at "/", which cannot occur in an address anyway.
	ok, err := path.Match(escaped, value)
	return err == nil && ok
}
