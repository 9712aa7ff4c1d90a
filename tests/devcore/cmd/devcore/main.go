// Command devcore runs the dev identity core: a development stand-in for Logto (OIDC endpoints and
// part of the Management API, in memory) for tests and the quickstart. It is not an identity
// provider and must never face a network: it only listens on loopback.
//
// On start it prints one JSON line to stdout with what a client needs:
//
//	{"url":"http://127.0.0.1:3901","clientId":"m2m-gateway","clientSecret":"dev-gateway-secret","demoUserId":"demouser0001","demoPassword":"Demo-Passw0rd!"}
//
// then serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/accountedge/caddy-account-api/tests/devcore"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:3901", "loopback address to listen on (\":0\" picks a free port; not 3001, Logto's own)")
	clientID := flag.String("client-id", devcore.DefaultClientID, "client id of the seeded machine-to-machine app")
	clientSecret := flag.String("client-secret", devcore.DefaultClientSecret, "client secret of the seeded machine-to-machine app")
	var pageURLs []string
	flag.Func("account-page", "URL of the account page (repeatable; default "+strings.Join(devcore.DefaultAccountPageURLs, ", ")+
		"): registers URL/callback and URL as redirect URIs of the "+devcore.AccountPageAppID+" application", func(s string) error {
		pageURLs = append(pageURLs, strings.TrimRight(s, "/"))
		return nil
	})
	// The quickstart shows the whole Account API (and account page), two-step verification and
	// devices included.
	mfaFactors := flag.String("mfa-factors", "Totp,BackupCode", "the sign-in experience's MFA factors, comma-separated (empty: none, Logto's default)")
	fields := flag.String("account-center-fields", "mfa=Edit,session=Edit",
		"account-center fields set over the seed's (nine fields Edit), comma-separated field=Off|ReadOnly|Edit")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), `Usage: devcore [flags]

devcore is a DEVELOPMENT STAND-IN FOR LOGTO, NOT AN IDENTITY PROVIDER. It serves Logto's OIDC
endpoints and the Management API routes the Account API gateway uses, from memory, with a seeded
demo user, plus a dev-only /dev API to mint user tokens. Its sign-in is a plain form for the seeded
users; it has no persistence and no hardening, and it only listens on loopback. Use it for tests
and the quickstart only.

Flags:
`)
		flag.PrintDefaults()
	}
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("devcore: ")

	addr, err := devcore.LoopbackAddr(*listen)
	if err != nil {
		log.Fatal(err)
	}
	// The mock social connector sends browsers to the core's own dev page, so linking a social
	// account works on the account page.
	accountCenter := map[string]string{}
	for _, item := range splitList(*fields) {
		field, control, ok := strings.Cut(item, "=")
		if !ok {
			log.Fatalf("-account-center-fields: %q is not field=control", item)
		}
		accountCenter[field] = control
	}
	core := devcore.New(devcore.Config{ClientID: *clientID, ClientSecret: *clientSecret, AccountPageURLs: pageURLs,
		MockSocialAuthorizeURL: "/dev/mock-social", MfaFactors: splitList(*mfaFactors), AccountCenterFields: accountCenter})
	srv, err := core.Start(addr)
	if err != nil {
		log.Fatal(err)
	}

	// One JSON line on stdout, so scripts can read the address and credentials.
	line, _ := json.Marshal(struct {
		URL          string `json:"url"`
		ClientID     string `json:"clientId"`
		ClientSecret string `json:"clientSecret"`
		DemoUserID   string `json:"demoUserId"`
		DemoPassword string `json:"demoPassword"`
	}{srv.URL, core.Config().ClientID, core.Config().ClientSecret, devcore.DemoUserID, devcore.DemoPassword})
	fmt.Println(string(line))
	log.Printf("development stand-in for Logto (not an identity provider) listening on %s", srv.URL)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	log.Print("shutting down")
	if err := srv.Close(); err != nil {
		log.Print(err)
	}
}

// splitList is a comma-separated flag's items, without blanks.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
