package harness

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// StartRedisTLS starts a redis-server that speaks only TLS, with a certificate for 127.0.0.1
// signed by an authority made for the test: r.CAFile() is that authority's PEM file, for the
// client to trust. It stops in t.Cleanup like StartRedis.
func StartRedisTLS(t testing.TB) *Redis {
	t.Helper()
	dir := t.TempDir()
	ca, caKey := newCertificate(t, nil, nil, "harness test CA")
	leaf, leafKey := newCertificate(t, ca, caKey, "127.0.0.1")
	caFile, certFile, keyFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "redis.pem"), filepath.Join(dir, "redis.key")
	writePEM(t, caFile, "CERTIFICATE", ca.Raw)
	writePEM(t, certFile, "CERTIFICATE", leaf.Raw)
	der, err := x509.MarshalECPrivateKey(leafKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyFile, "EC PRIVATE KEY", der)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return startRedisWith(t, FreePort(t), nil, &redisTLS{caFile: caFile, certFile: certFile, keyFile: keyFile,
		client: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}})
}

// redisTLS is how a TLS-only redis-server is set up and reached.
type redisTLS struct {
	caFile, certFile, keyFile string
	client                    *tls.Config
}

// CAFile is the PEM file of the authority that signed a TLS server's certificate ("" for a
// plain one).
func (r *Redis) CAFile() string {
	if r.tls == nil {
		return ""
	}
	return r.tls.caFile
}

// newCertificate makes a certificate for name signed by parent (self-signed, an authority,
// when parent is nil).
func newCertificate(t testing.TB, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if parent == nil {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign
		parent, parentKey = tmpl, key
	} else {
		tmpl.IPAddresses = []net.IP{net.ParseIP(name)}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func writePEM(t testing.TB, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
