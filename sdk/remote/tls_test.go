package remote

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/internal/testkit"
)

// testCA issues certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, name string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	return ca.issueFor(t, name, usage, "127.0.0.1")
}

// issueFor issues a certificate valid for the host ip.
func (ca *testCA) issueFor(t *testing.T, name string, usage x509.ExtKeyUsage, ip string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
		IPAddresses: []net.IP{net.ParseIP(ip)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsNode starts a node serving TLS with a certificate from ca; clientCert,
// if set, is presented when dialing; requireClient demands one from dialers.
func tlsNode(t *testing.T, ca *testCA, clientCert *tls.Certificate, requireClient bool) *node {
	return startNode(t, tlsConfig(t, ca, clientCert, requireClient))
}

// tlsConfig is tlsNode's configuration.
func tlsConfig(t *testing.T, ca *testCA, clientCert *tls.Certificate, requireClient bool) Config {
	cfg := fastConfig()
	cfg.ServerTLS = &tls.Config{Certificates: []tls.Certificate{ca.issue(t, "server", x509.ExtKeyUsageServerAuth)}, MinVersion: tls.VersionTLS13}
	if requireClient {
		cfg.ServerTLS.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ServerTLS.ClientCAs = ca.pool
	}
	cfg.ClientTLS = &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS13}
	if clientCert != nil {
		cfg.ClientTLS.Certificates = []tls.Certificate{*clientCert}
	}
	return cfg
}

func requestEcho(t *testing.T, from, to *node) error {
	if _, err := to.sys.SpawnNamed(actor.PropsFromFunc(echo), "echo"); err != nil && !errors.Is(err, actor.ErrNameExists) {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	_, err := from.sys.Request(ctx, actor.NewPID(to.r.Address(), "echo"), str("over tls"))
	return err
}

func TestTLS(t *testing.T) {
	ca := newTestCA(t, "troupe test CA")
	a, b := tlsNode(t, ca, nil, false), tlsNode(t, ca, nil, false)
	if err := requestEcho(t, a, b); err != nil {
		t.Fatalf("TLS request: %v", err)
	}

	// A dialer that does not trust the server's CA is refused.
	other := newTestCA(t, "another CA")
	c := tlsNode(t, other, nil, false)
	if err := requestEcho(t, c, b); !errors.Is(err, ErrEndpointTerminated) {
		t.Fatalf("request with an untrusted server certificate: %v", err)
	}
	// A plain dialer cannot talk to a TLS listener.
	plain := startNode(t, fastConfig())
	if err := requestEcho(t, plain, b); !errors.Is(err, ErrEndpointTerminated) {
		t.Fatalf("plain request to a TLS listener: %v", err)
	}
}

func TestMutualTLS(t *testing.T) {
	ca := newTestCA(t, "troupe test CA")
	clientA := ca.issue(t, "a", x509.ExtKeyUsageClientAuth)
	clientB := ca.issue(t, "b", x509.ExtKeyUsageClientAuth)
	a, b := tlsNode(t, ca, &clientA, true), tlsNode(t, ca, &clientB, true)
	if err := requestEcho(t, a, b); err != nil {
		t.Fatalf("mTLS request: %v", err)
	}

	// A dialer without a client certificate is refused.
	anonymous := tlsNode(t, ca, nil, true)
	if err := requestEcho(t, anonymous, b); !errors.Is(err, ErrEndpointTerminated) {
		t.Fatalf("request without a client certificate: %v", err)
	}
	// So is one whose certificate another CA issued.
	rogueCA := newTestCA(t, "rogue CA")
	rogue := rogueCA.issue(t, "rogue", x509.ExtKeyUsageClientAuth)
	intruder := tlsNode(t, ca, &rogue, true)
	if err := requestEcho(t, intruder, b); !errors.Is(err, ErrEndpointTerminated) {
		t.Fatalf("request with a certificate of another CA: %v", err)
	}
}

func TestMutualTLSBindsTheAdvertisedAddress(t *testing.T) {
	ca := newTestCA(t, "troupe test CA")
	clientB := ca.issue(t, "b", x509.ExtKeyUsageClientAuth)
	b := tlsNode(t, ca, &clientB, true)
	// A member of the same CA whose certificate names another host than
	// the one it advertises: it could speak for another member's address.
	elsewhere := ca.issueFor(t, "elsewhere", x509.ExtKeyUsageClientAuth, "10.9.9.9")
	a := tlsNode(t, ca, &elsewhere, true)
	err := requestEcho(t, a, b)
	if !errors.Is(err, ErrAddressNotCertified) || !strings.Contains(err.Error(), a.r.Address()) {
		t.Fatalf("dialer's error = %v, want ErrAddressNotCertified naming %s", err, a.r.Address())
	}
	testkit.Eventually(t, "the listener to log the refusal", func() bool {
		return b.logs.Contains("refused a connection", "not valid for the address it advertises", a.r.Address())
	})

	// A listener that trusts claimed addresses accepts the same dialer.
	cfg := tlsConfig(t, ca, &clientB, true)
	cfg.TrustClaimedAddresses = true
	trusting := startNode(t, cfg)
	if err := requestEcho(t, a, trusting); err != nil {
		t.Fatalf("request to a listener that trusts claimed addresses: %v", err)
	}
}

// A listener that asks for client certificates but accepts dialers
// without a verified one cannot bind dialers to their addresses: Start
// says so. Plain TLS and mutual TLS start without the warning.
func TestHalfMutualTLSIsWarnedAbout(t *testing.T) {
	ca := newTestCA(t, "troupe test CA")
	const warning = "remote: ServerTLS asks dialers for a certificate but accepts them without a verified one"
	for auth, warned := range map[tls.ClientAuthType]bool{
		tls.NoClientCert:               false,
		tls.VerifyClientCertIfGiven:    true,
		tls.RequireAnyClientCert:       true,
		tls.RequireAndVerifyClientCert: false,
	} {
		cfg := tlsConfig(t, ca, nil, false)
		cfg.ServerTLS.ClientAuth, cfg.ServerTLS.ClientCAs = auth, ca.pool
		if n := startNode(t, cfg); n.logs.Contains(warning) != warned {
			t.Errorf("ClientAuth %v: warned %v, want %v; logs %q", auth, !warned, warned, n.logs.Lines())
		}
	}
}
