package sparkconnect

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Field names of the Spark Connect protocol (spark/connect/base.proto) the tracker
// reads and writes by reflection: spark-connect-go keeps its generated types in an
// internal package.
const (
	fieldSessionID          = "session_id"
	fieldServerSideSession  = "server_side_session_id"
	fieldObservedServerSide = "client_observed_server_side_session_id"
)

// errNotOpened: a streaming call came before the session's first (unary) call, so
// its id is unknown and no header could be set. Open always makes a unary call first.
var errNotOpened = errors.New("sparkconnect: session used before it was opened")

// tracker follows one Spark Connect session: its id (taken from the first request,
// sent as SessionHeader on every request) and the server-side session id the server
// reported (sent back so that a server that does not hold the session says so).
type tracker struct {
	mu         sync.Mutex
	sessionID  string
	serverSide string
}

func (t *tracker) ids() (session, serverSide string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sessionID, t.serverSide
}

// before learns the session id from the first request, stamps the observed
// server-side id into the request and returns the context with the header.
func (t *tracker) before(ctx context.Context, req any) (context.Context, error) {
	t.mu.Lock()
	if t.sessionID == "" {
		if id, ok := getString(req, fieldSessionID); ok && id != "" {
			t.sessionID = id
		}
	}
	id, observed := t.sessionID, t.serverSide
	t.mu.Unlock()
	if id == "" {
		return ctx, errNotOpened
	}
	if observed != "" {
		setString(req, fieldObservedServerSide, observed)
	}
	if md, ok := metadata.FromOutgoingContext(ctx); ok && len(md.Get(SessionHeader)) > 0 {
		return ctx, nil
	}
	return metadata.AppendToOutgoingContext(ctx, SessionHeader, id), nil
}

// after records the server-side session id of a response. Only the first one is
// kept: a later, different id is the server's to reject (SESSION_CHANGED).
func (t *tracker) after(resp any) {
	id, ok := getString(resp, fieldServerSideSession)
	if !ok || id == "" {
		return
	}
	t.mu.Lock()
	if t.serverSide == "" {
		t.serverSide = id
	}
	t.mu.Unlock()
}

func (t *tracker) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	ctx, err := t.before(ctx, req)
	if err != nil {
		return err
	}
	if err := invoker(ctx, method, req, reply, cc, opts...); err != nil {
		return err
	}
	t.after(reply)
	return nil
}

func (t *tracker) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	id, _ := t.ids()
	if id == "" {
		return nil, errNotOpened
	}
	ctx = metadata.AppendToOutgoingContext(ctx, SessionHeader, id)
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		return nil, err
	}
	return &trackedStream{ClientStream: cs, t: t}, nil
}

type trackedStream struct {
	grpc.ClientStream
	t *tracker
}

func (s *trackedStream) SendMsg(m any) error {
	if _, observed := s.t.ids(); observed != "" {
		setString(m, fieldObservedServerSide, observed)
	}
	return s.ClientStream.SendMsg(m)
}

func (s *trackedStream) RecvMsg(m any) error {
	if err := s.ClientStream.RecvMsg(m); err != nil {
		return err
	}
	s.t.after(m)
	return nil
}

func getString(m any, name protoreflect.Name) (string, bool) {
	pm, ok := m.(proto.Message)
	if !ok {
		return "", false
	}
	r := pm.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return "", false
	}
	return r.Get(fd).String(), true
}

func setString(m any, name protoreflect.Name, v string) bool {
	pm, ok := m.(proto.Message)
	if !ok {
		return false
	}
	r := pm.ProtoReflect()
	fd := r.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Kind() != protoreflect.StringKind || fd.IsList() {
		return false
	}
	r.Set(fd, protoreflect.ValueOfString(v))
	return true
}

// channelBuilder is spark-connect-go's channel.Builder for one session: a gRPC
// client connection to the pool whose interceptors set the session header and
// track the server-side session.
type channelBuilder struct {
	target string
	user   string
	t      *tracker
	conn   *grpc.ClientConn
}

func (b *channelBuilder) Build(context.Context) (*grpc.ClientConn, error) {
	conn, err := grpc.NewClient("passthrough:///"+b.target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(b.t.unary),
		grpc.WithChainStreamInterceptor(b.t.stream),
		grpc.WithUserAgent("hourglass"),
	)
	if err != nil {
		return nil, fmt.Errorf("sparkconnect: grpc client for %s: %w", b.target, err)
	}
	b.conn = conn
	return conn, nil
}

func (b *channelBuilder) User() string { return b.user }

// Headers is empty: the interceptors set the session header.
func (b *channelBuilder) Headers() map[string]string { return map[string]string{} }
func (b *channelBuilder) SessionId() string          { return "" }
func (b *channelBuilder) UserAgent() string          { return "hourglass" }
