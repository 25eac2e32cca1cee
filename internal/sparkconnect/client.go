package sparkconnect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/spark-connect-go/spark/sparkerrors"
	"github.com/apache/spark-connect-go/spark/sql"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/hourglass-io/hourglass/internal/retry"
)

// Errors of a session. Match with errors.Is.
var (
	// ErrSessionLost: the server holding the session died, restarted or expired it;
	// what the session held (temp views, cache, settings) is gone. Open a new session.
	ErrSessionLost = errors.New("sparkconnect: session lost")
	// ErrUnavailable: the pool answered UNAVAILABLE on every attempt.
	ErrUnavailable = errors.New("sparkconnect: pool unavailable")
	// ErrNoSessionHeader: the pool refused a request that named no session.
	ErrNoSessionHeader = errors.New("sparkconnect: request refused without a session header")
	// ErrTooManyRows: a result had more than Config.MaxRows rows.
	ErrTooManyRows = errors.New("sparkconnect: result exceeds max rows")
	// ErrClosed: the session was closed.
	ErrClosed = errors.New("sparkconnect: session closed")
)

// Client opens sessions through the pool. Safe for concurrent use; it holds no
// connection itself (each session has its own).
type Client struct {
	cfg    Config
	target string
	logger *slog.Logger
}

// New checks the configuration; it does no I/O.
func New(cfg Config, logger *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	target, _ := parseURL(cfg.URL)
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{cfg: cfg, target: target, logger: logger.With("component", "sparkconnect")}, nil
}

// Session is one Spark Connect session, pinned by the pool to one server. Its
// methods may be called concurrently.
type Session struct {
	c     *Client
	spark sql.SparkSession
	b     *channelBuilder
	t     *tracker

	inFlight atomic.Int32 // SQL and Exec calls running

	mu     sync.Mutex
	lost   error
	closed bool
}

// Open starts a session: it connects, makes the session's first call (which fixes
// the session id the header carries and learns the server-side session id) and
// returns once a server answered.
func (c *Client) Open(ctx context.Context) (*Session, error) {
	t := &tracker{}
	b := &channelBuilder{target: c.target, user: c.cfg.User, t: t}
	spark, err := sql.NewSessionBuilder().WithChannelBuilder(b).Build(ctx)
	if err != nil {
		return nil, fmt.Errorf("sparkconnect: open session at %s: %w", c.cfg.URL, err)
	}
	s := &Session{c: c, spark: spark, b: b, t: t}
	err = s.do(ctx, "open", func(ctx context.Context) error {
		_, err := spark.Config().GetWithDefault(ctx, "spark.app.name", "")
		return err
	})
	if err != nil {
		_ = b.conn.Close()
		return nil, err
	}
	id, serverSide := t.ids()
	c.logger.Debug("session opened", "session", id, "server_side_session", serverSide)
	return s, nil
}

// ID is the session's id: the value of the session header and Spark's session id.
func (s *Session) ID() string {
	id, _ := s.t.ids()
	return id
}

// SQL runs a query and returns its rows as an Arrow table (nil when the statement
// returns no rows). At most Config.MaxRows rows: more is ErrTooManyRows. The caller
// releases the table.
func (s *Session) SQL(ctx context.Context, query string) (arrow.Table, error) {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	var out arrow.Table
	err := s.do(ctx, "sql", func(ctx context.Context) error {
		df, err := s.spark.Sql(ctx, query)
		if err != nil {
			return err
		}
		tbl, err := df.Limit(ctx, int32(s.c.cfg.MaxRows+1)).ToArrow(ctx)
		if err != nil {
			return err
		}
		if tbl == nil || *tbl == nil {
			return nil
		}
		if (*tbl).NumRows() > int64(s.c.cfg.MaxRows) {
			(*tbl).Release()
			return fmt.Errorf("%w (%d)", ErrTooManyRows, s.c.cfg.MaxRows)
		}
		out = *tbl
		return nil
	})
	return out, err
}

// Exec runs a statement for its effect (CREATE TEMP VIEW, SET, ...).
func (s *Session) Exec(ctx context.Context, stmt string) error {
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	return s.do(ctx, "exec", func(ctx context.Context) error {
		_, err := s.spark.Sql(ctx, stmt)
		return err
	})
}

// Interrupt asks the session's server to interrupt every running operation of the
// session, and returns once one was interrupted or none of the session's calls is
// in flight. A call sent just before may not be registered on the server yet (an
// interrupt then finds nothing): Interrupt asks again, with backoff, while such a
// call is in flight and ctx allows. (Cancelling a call's context interrupts that
// call's query too.)
func (s *Session) Interrupt(ctx context.Context) error {
	b := retry.Backoff{Initial: 20 * time.Millisecond, Max: time.Second}
	return b.Do(ctx, func() error {
		var interrupted int
		err := s.do(ctx, "interrupt", func(ctx context.Context) error {
			resp, err := s.invoke(ctx, "Interrupt", "spark.connect.InterruptRequest", "spark.connect.InterruptResponse",
				func(req protoreflect.Message) {
					fd := req.Descriptor().Fields().ByName("interrupt_type")
					req.Set(fd, protoreflect.ValueOfEnum(fd.Enum().Values().ByName("INTERRUPT_TYPE_ALL").Number()))
				})
			if err == nil {
				interrupted = resp.Get(resp.Descriptor().Fields().ByName("interrupted_ids")).List().Len()
			}
			return err
		})
		switch {
		case err != nil:
			return retry.Permanent(err) // do has retried what can be
		case interrupted == 0 && s.inFlight.Load() > 0:
			return fmt.Errorf("sparkconnect: interrupt in session %s: a call is in flight and the server holds none of its operations yet", s.ID())
		}
		return nil
	})
}

// Close releases the session on its server and closes the connection. A lost
// session is only disconnected.
func (s *Session) Close(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	lost := s.lost
	s.mu.Unlock()
	var err error
	if lost == nil {
		_, err = s.invoke(ctx, "ReleaseSession", "spark.connect.ReleaseSessionRequest", "spark.connect.ReleaseSessionResponse", nil)
		if err != nil {
			err = fmt.Errorf("sparkconnect: release session %s: %w", s.ID(), err)
		}
	}
	return errors.Join(err, s.b.conn.Close())
}

// invoke calls a unary method of SparkConnectService that spark-connect-go does not
// expose, building the request from the protocol's registered message types.
func (s *Session) invoke(ctx context.Context, method, reqName, respName string, fill func(protoreflect.Message)) (protoreflect.Message, error) {
	reqType, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(reqName))
	if err != nil {
		return nil, fmt.Errorf("sparkconnect: %s: %w", reqName, err)
	}
	respType, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(respName))
	if err != nil {
		return nil, fmt.Errorf("sparkconnect: %s: %w", respName, err)
	}
	req := reqType.New()
	fields := req.Descriptor().Fields()
	req.Set(fields.ByName(fieldSessionID), protoreflect.ValueOfString(s.ID()))
	uc := req.NewField(fields.ByName("user_context")).Message()
	uc.Set(uc.Descriptor().Fields().ByName("user_id"), protoreflect.ValueOfString(s.c.cfg.User))
	req.Set(fields.ByName("user_context"), protoreflect.ValueOfMessage(uc))
	if fill != nil {
		fill(req)
	}
	resp := respType.New()
	return resp, s.b.conn.Invoke(ctx, "/spark.connect.SparkConnectService/"+method, req.Interface(), resp.Interface())
}

// do runs op with the session's error rules: a lost session stays lost, UNAVAILABLE
// is retried with backoff while ctx allows, errors are mapped to the package's.
func (s *Session) do(ctx context.Context, what string, op func(context.Context) error) error {
	s.mu.Lock()
	lost, closed := s.lost, s.closed
	s.mu.Unlock()
	switch {
	case closed:
		return fmt.Errorf("sparkconnect: %s: %w", what, ErrClosed)
	case lost != nil:
		return fmt.Errorf("%s: %w", what, lost)
	}
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("sparkconnect: %s in session %s: %w", what, s.ID(), ctxErr)
		}
		switch kind, msg := classify(err); kind {
		case kindLost:
			lostErr := fmt.Errorf("%w: session %s: %s", ErrSessionLost, s.ID(), msg)
			s.mu.Lock()
			s.lost = lostErr
			s.mu.Unlock()
			s.c.logger.Warn("session lost", "session", s.ID(), "reason", msg)
			return fmt.Errorf("%s: %w", what, lostErr)
		case kindNoHeader:
			return fmt.Errorf("sparkconnect: %s: %w: %s", what, ErrNoSessionHeader, msg)
		case kindUnavailable:
			if attempt >= s.c.cfg.Attempts {
				return fmt.Errorf("sparkconnect: %s in session %s: %w after %d attempts: %s", what, s.ID(), ErrUnavailable, attempt, msg)
			}
			wait := s.c.cfg.backoff(attempt)
			s.c.logger.Debug("pool unavailable, retrying", "session", s.ID(), "attempt", attempt, "wait", wait, "reason", msg)
			timer := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
				return fmt.Errorf("sparkconnect: %s in session %s: %w (last: %s)", what, s.ID(), ctx.Err(), msg)
			case <-timer.C:
			}
		default:
			return fmt.Errorf("sparkconnect: %s in session %s: %w", what, s.ID(), err)
		}
	}
}

type errKind int

const (
	kindOther errKind = iota
	kindLost
	kindUnavailable
	kindNoHeader
)

// Spark's error classes that mean the server does not hold the session.
var lostClasses = []string{
	"INVALID_HANDLE.SESSION_CHANGED",
	"INVALID_HANDLE.SESSION_CLOSED",
	"INVALID_HANDLE.SESSION_NOT_FOUND",
}

// classify maps an error of spark-connect-go or gRPC to a kind and a message.
func classify(err error) (errKind, string) {
	code, msg, class := codes.Unknown, err.Error(), ""
	var se *sparkerrors.SparkError
	if errors.As(err, &se) {
		code, msg, class = se.Code, se.Message, se.ErrorClass
	} else if st, ok := status.FromError(err); ok {
		code, msg = st.Code(), st.Message()
	} else if errors.Is(err, errNotOpened) {
		return kindOther, msg
	}
	for _, c := range lostClasses {
		if class == c || strings.Contains(msg, c) {
			return kindLost, msg
		}
	}
	switch {
	case code == codes.InvalidArgument && strings.HasPrefix(msg, "hourglass-pool:"):
		return kindNoHeader, msg
	case code == codes.Unavailable:
		return kindUnavailable, msg
	}
	return kindOther, msg
}

// conn exposes the session's gRPC connection to the package's tests.
func (s *Session) conn() *grpc.ClientConn { return s.b.conn }
