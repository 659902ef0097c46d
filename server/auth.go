package server

import (
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/crypto/bcrypt"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"github.com/plumbdb/plumb/node"
)

// The server's half of authentication (the node holds the replicated
// users, roles and permissions, and etcd's simple tokens; see node/auth.go):
//
//   - who sends a request: a token in the gRPC metadata ("token", as
//     clientv3 sends it, or "authorization", as the JSON gateway does), or
//     with --client-cert-auth the common name of the client's verified
//     certificate, as etcd's AuthInfoFromCtx and AuthInfoFromTLS;
//   - passwords: hashed with bcrypt at --bcrypt-cost before they enter the
//     raft log, and checked with bcrypt against the hash the node holds;
//   - JWTs (--auth-token jwt,...): signed and verified here, with the user
//     and the auth revision as claims, as etcd's tokenJWT.

// authenticator is the server's authentication settings and state.
type authenticator struct {
	jwt            *jwtTokens // nil: simple tokens
	bcryptCost     int
	clientCertAuth bool
	logger         *slog.Logger
	// compares bounds the bcrypt comparisons running at once, so that a
	// flood of logins with wrong passwords costs one comparison each and
	// queues, rather than taking every core from the member.
	compares chan struct{}
	// dummyHash is compared against for a user that does not exist, so
	// that a wrong user costs what a wrong password costs and the time
	// of a refusal does not tell which users exist.
	dummyHash []byte
	refusals  *prometheus.CounterVec
}

func newAuthenticator(cfg Config, logger *slog.Logger, m *metrics) (*authenticator, error) {
	a := &authenticator{
		bcryptCost:     cmp.Or(int(cfg.BcryptCost), bcrypt.DefaultCost),
		clientCertAuth: cfg.ClientCertAuth,
		logger:         logger,
		compares:       make(chan struct{}, max(1, runtime.GOMAXPROCS(0))),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "plumb_auth_refusals_total",
			Help: "Requests refused by authentication or authorization, by etcd's error."}, []string{"error"}),
	}
	m.reg.MustRegister(a.refusals)
	var err error
	if a.dummyHash, err = bcrypt.GenerateFromPassword([]byte("plumb: no such user"), a.bcryptCost); err != nil {
		return nil, fmt.Errorf("--bcrypt-cost %d: %w", a.bcryptCost, err)
	}
	kind, opts, err := parseAuthToken(cmp.Or(cfg.AuthToken, "simple"))
	if err != nil {
		return nil, err
	}
	if kind == "jwt" {
		if a.jwt, err = newJWTTokens(opts); err != nil {
			return nil, fmt.Errorf("--auth-token %s: %w", cfg.AuthToken, err)
		}
	} else {
		logger.Warn("simple token is not cryptographically signed")
	}
	return a, nil
}

// parseAuthToken splits etcd's --auth-token: "simple", or
// "jwt,pub-key=...,priv-key=...,sign-method=...,ttl=...".
func parseAuthToken(s string) (kind string, opts map[string]string, err error) {
	parts := strings.Split(s, ",")
	kind, opts = parts[0], map[string]string{}
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return "", nil, fmt.Errorf("--auth-token %q: option %q is not key=value", s, p)
		}
		if _, dup := opts[k]; dup {
			return "", nil, fmt.Errorf("--auth-token %q: option %q given twice", s, k)
		}
		opts[k] = v
	}
	switch kind {
	case "simple":
		if len(opts) > 0 {
			return "", nil, fmt.Errorf("--auth-token %q: simple tokens take no options", s)
		}
	case "jwt":
	default:
		return "", nil, fmt.Errorf("--auth-token %q: unknown token type %q (simple or jwt)", s, kind)
	}
	return kind, opts, nil
}

// credentials says who sent the request ctx belongs to.
func (a *authenticator) credentials(ctx context.Context) node.Credentials {
	if a == nil {
		return node.Credentials{}
	}
	if c, ok := ctx.Value(forwardedCreds{}).(node.Credentials); ok {
		return c // resolved by the member that forwarded the request (forward.go)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	tok := firstMD(md, rpctypes.TokenFieldNameGRPC)
	if tok == "" {
		tok = firstMD(md, rpctypes.TokenFieldNameSwagger)
	}
	if tok != "" {
		if a.jwt == nil {
			return node.Credentials{Token: tok}
		}
		user, rev, err := a.jwt.verify(tok)
		if err != nil {
			a.logger.Warn("failed to parse a JWT token", "err", err)
			return node.Credentials{BadToken: true}
		}
		return node.Credentials{User: user, Revision: rev}
	}
	if p, ok := grpcpeer.FromContext(ctx); ok {
		if _, self := p.Addr.(actingAddr); self {
			// The member's own client, acting for a client it verified
			// (selfClient): nothing else reaches this address.
			return node.Credentials{User: firstMD(md, actingUserKey)}
		}
	}
	if a.clientCertAuth {
		if cn := verifiedCommonName(ctx); cn != "" {
			return node.Credentials{User: cn}
		}
	}
	return node.Credentials{}
}

// actingUserKey carries, on the member's own client's calls, the user
// its certificate named to the member for the client it acts for.
const actingUserKey = "plumb-acting-for"

// act is the self client's interceptor: it copies into the outgoing
// call the identity of the client whose call ctx is: its token as it
// came, or the user its verified certificate names.
func (a *authenticator) act(ctx context.Context) context.Context {
	out := passCredentials(ctx, ctx)
	if out != ctx || a == nil || !a.clientCertAuth {
		return out
	}
	if cn := verifiedCommonName(ctx); cn != "" {
		return metadata.AppendToOutgoingContext(ctx, actingUserKey, cn)
	}
	return ctx
}

func firstMD(md metadata.MD, key string) string {
	if v := md.Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// verifiedCommonName is the common name of the client certificate the
// connection verified, or "".
func verifiedCommonName(ctx context.Context) string {
	p, ok := grpcpeer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return ""
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return ""
	}
	for _, chain := range info.State.VerifiedChains {
		if len(chain) > 0 {
			return chain[0].Subject.CommonName
		}
	}
	return ""
}

// passCredentials copies the caller's token into an outgoing context, for
// calls the member makes on a client's behalf to itself (act).
func passCredentials(in, out context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(in)
	for _, k := range []string{rpctypes.TokenFieldNameGRPC, rpctypes.TokenFieldNameSwagger} {
		if v := firstMD(md, k); v != "" {
			return metadata.AppendToOutgoingContext(out, k, v)
		}
	}
	return out
}

// hashPassword hashes a new password as etcd's server does before the
// request enters the raft log (base64 of the bcrypt hash).
func (a *authenticator) hashPassword(pw string) ([]byte, error) {
	return bcrypt.GenerateFromPassword([]byte(pw), a.bcryptCost)
}

// checkPassword compares pw with hash (nil: the user does not exist, and
// the dummy hash is compared instead), one comparison at a time per core.
func (a *authenticator) checkPassword(ctx context.Context, hash []byte, pw string) (bool, error) {
	select {
	case a.compares <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-a.compares }()
	if hash == nil {
		_ = bcrypt.CompareHashAndPassword(a.dummyHash, []byte(pw))
		return false, nil
	}
	return bcrypt.CompareHashAndPassword(hash, []byte(pw)) == nil, nil
}

// simpleTokenPrefix is etcd's: 16 random letters; the node appends the
// index of the Authenticate entry.
func (a *authenticator) simpleTokenPrefix() string {
	if a.jwt != nil {
		return ""
	}
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("server: random token: %v", err)) // crypto/rand does not fail on Linux
	}
	for i := range b {
		b[i] = letters[int(b[i])%len(letters)]
	}
	return string(b)
}

// authErrors are the refusals counted in /metrics and logged.
var authErrors = []error{rpctypes.ErrGRPCUserEmpty, rpctypes.ErrGRPCPermissionDenied, rpctypes.ErrGRPCInvalidAuthToken,
	rpctypes.ErrGRPCAuthFailed, rpctypes.ErrGRPCAuthOldRevision, rpctypes.ErrGRPCUserNotFound}

func (a *authenticator) count(method string, err error) {
	if a == nil {
		return
	}
	for _, e := range authErrors {
		if sameStatus(err, e) {
			desc := status.Convert(e).Message()
			a.refusals.WithLabelValues(strings.TrimPrefix(desc, "etcdserver: ")).Inc()
			a.logger.Info("request refused", "method", method, "err", desc)
			return
		}
	}
}

// adminMethods are the calls the server answers itself that need the root
// role with authentication enabled, and userMethods those that need a
// user at all (etcd's authMaintenanceServer); the node checks the rest.
var (
	adminMethods = map[string]bool{
		"/etcdserverpb.Maintenance/Defragment": true, "/etcdserverpb.Maintenance/Snapshot": true,
		"/etcdserverpb.Maintenance/Hash": true, "/etcdserverpb.Maintenance/HashKV": true,
		"/etcdserverpb.Maintenance/MoveLeader": true, "/etcdserverpb.Maintenance/Downgrade": true,
	}
	userMethods = map[string]bool{"/etcdserverpb.Maintenance/Status": true}
)

// access checks what adminMethods and userMethods ask for.
func (l *loop) access(ctx context.Context, method string) error {
	admin, user := adminMethods[method], userMethods[method]
	if !admin && !user {
		return nil
	}
	creds := l.auth.credentials(ctx)
	var err error
	if e := l.exec(ctx, func(n *node.Node) {
		ai, rerr := n.ResolveAuth(creds)
		switch {
		case rerr != nil:
			err = rerr
		case admin:
			err = n.CheckAdmin(ai)
		default:
			err = n.RequireUser(ai)
		}
	}); e != nil {
		return toGRPC(e)
	}
	return toGRPC(err)
}

func authUnary(l *loop) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := l.access(ctx, info.FullMethod); err != nil {
			l.auth.count(info.FullMethod, err)
			return nil, err
		}
		resp, err := handler(ctx, req)
		if err != nil {
			l.auth.count(info.FullMethod, err)
		}
		return resp, err
	}
}

func authStream(l *loop) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := l.access(ss.Context(), info.FullMethod); err != nil {
			l.auth.count(info.FullMethod, err)
			return err
		}
		err := handler(srv, ss)
		if err != nil {
			l.auth.count(info.FullMethod, err)
		}
		return err
	}
}

// jwtTokens signs and verifies etcd's JWTs: claims "username",
// "revision" and "exp".
type jwtTokens struct {
	method    jwt.SigningMethod
	sign      any // nil: verify only (only a public key was given)
	verifyKey any
	ttl       time.Duration
}

func newJWTTokens(opts map[string]string) (*jwtTokens, error) {
	for k := range opts {
		switch k {
		case "pub-key", "priv-key", "sign-method", "ttl":
		default:
			return nil, fmt.Errorf("unknown JWT option %q (pub-key, priv-key, sign-method, ttl)", k)
		}
	}
	t := &jwtTokens{ttl: 5 * time.Minute}
	if v := opts["ttl"]; v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("ttl %q is not a positive duration", v)
		}
		t.ttl = d
	}
	name := opts["sign-method"]
	if name == "" {
		return nil, errors.New("sign-method is required")
	}
	t.method = jwt.GetSigningMethod(name)
	if t.method == nil {
		return nil, fmt.Errorf("unknown sign-method %q", name)
	}
	read := func(k string) ([]byte, error) {
		if opts[k] == "" {
			return nil, nil
		}
		b, err := os.ReadFile(opts[k])
		if err != nil {
			return nil, fmt.Errorf("%s: %w", k, err)
		}
		return b, nil
	}
	priv, err := read("priv-key")
	if err != nil {
		return nil, err
	}
	pub, err := read("pub-key")
	if err != nil {
		return nil, err
	}
	switch t.method.(type) {
	case *jwt.SigningMethodHMAC:
		if priv == nil {
			return nil, errors.New("an HMAC sign-method needs priv-key (the shared secret)")
		}
		t.sign, t.verifyKey = priv, priv
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		if priv != nil {
			k, err := jwt.ParseRSAPrivateKeyFromPEM(priv)
			if err != nil {
				return nil, fmt.Errorf("priv-key: %w", err)
			}
			t.sign, t.verifyKey = k, &k.PublicKey
		}
		if pub != nil {
			k, err := jwt.ParseRSAPublicKeyFromPEM(pub)
			if err != nil {
				return nil, fmt.Errorf("pub-key: %w", err)
			}
			t.verifyKey = k
		}
	case *jwt.SigningMethodECDSA:
		if priv != nil {
			k, err := jwt.ParseECPrivateKeyFromPEM(priv)
			if err != nil {
				return nil, fmt.Errorf("priv-key: %w", err)
			}
			t.sign, t.verifyKey = k, &k.PublicKey
		}
		if pub != nil {
			k, err := jwt.ParseECPublicKeyFromPEM(pub)
			if err != nil {
				return nil, fmt.Errorf("pub-key: %w", err)
			}
			t.verifyKey = k
		}
	case *jwt.SigningMethodEd25519:
		if priv != nil {
			k, err := jwt.ParseEdPrivateKeyFromPEM(priv)
			if err != nil {
				return nil, fmt.Errorf("priv-key: %w", err)
			}
			t.sign = k
		}
		if pub != nil {
			k, err := jwt.ParseEdPublicKeyFromPEM(pub)
			if err != nil {
				return nil, fmt.Errorf("pub-key: %w", err)
			}
			t.verifyKey = k
		}
	default:
		return nil, fmt.Errorf("sign-method %q is not supported", name)
	}
	if t.verifyKey == nil {
		return nil, errors.New("pub-key or priv-key is required")
	}
	return t, nil
}

func (t *jwtTokens) assign(user string, rev uint64) (string, error) {
	if t.sign == nil {
		return "", errors.New("auth: token signing attempted with verify-only key")
	}
	return jwt.NewWithClaims(t.method, jwt.MapClaims{
		"username": user, "revision": rev, "exp": time.Now().Add(t.ttl).Unix(),
	}).SignedString(t.sign)
}

func (t *jwtTokens) verify(tok string) (string, uint64, error) {
	parsed, err := jwt.Parse(tok, func(*jwt.Token) (any, error) { return t.verifyKey, nil },
		jwt.WithValidMethods([]string{t.method.Alg()}), jwt.WithExpirationRequired())
	if err != nil {
		return "", 0, err
	}
	claims, ok := parsed.Claims.(jwt.MapClaims)
	if !ok {
		return "", 0, errors.New("no claims")
	}
	user, _ := claims["username"].(string)
	rev, _ := claims["revision"].(float64)
	if user == "" || rev < 1 {
		return "", 0, errors.New("no username or revision claim")
	}
	return user, uint64(rev), nil
}
