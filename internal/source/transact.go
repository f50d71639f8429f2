package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-dev/sluice/internal/batch"
)

// Transactional is a pipe's consumer for EXACTLY_ONCE delivery: each poll
// is one Kafka transaction (franz-go's GroupTransactSession). The handler
// gets the poll's batches with the transaction (batch.Txn) to produce
// through, and the offsets past the poll are committed inside the same
// transaction, so a read_committed reader of the output sees each source
// record's output once, through crashes, kills and rebalances.
//
// A transaction commits only when every record of the poll is final. It
// aborts, and the poll is read again from the last committed offsets, when
// a produce fails (the transaction can no longer commit what it holds),
// when the group rebalances before it ends, or when a record is left
// unfinished (the pipe is stopping). Failure destinations are outside the
// transaction: a record handed to one in an aborted transaction may reach
// it twice.
//
// The cost against the at-least-once Source: one poll at a time (partitions
// of a poll are delivered concurrently, but the next poll waits for the
// transaction to end), and two more round trips per poll (the offsets and
// the transaction's end).
type Transactional struct {
	cfg     Config
	handler Handler
	log     *slog.Logger

	cl   atomic.Pointer[kgo.Client]
	held holdings
	// txn is the transaction being delivered, for the rebalance callbacks
	// to stop it.
	txn atomic.Pointer[txnProducer]

	fence atomic.Pointer[context.CancelCauseFunc]
}

// DefaultTransactionTimeout is Config.TransactionTimeout's default: how
// long the broker lets a transaction stay open before aborting it. A
// process killed mid-transaction holds its partitions' offsets unstable
// this long, unless it comes back with the same transactional id (a static
// member does), which aborts the transaction at once.
const DefaultTransactionTimeout = time.Minute

// NewTransactional makes a transactional consumer; cfg.TransactionalID is
// required. It does not connect until Run.
func NewTransactional(cfg Config, h Handler) (*Transactional, error) {
	if cfg.TransactionalID == "" {
		return nil, errors.New("source: a transactional consumer needs a transactional id")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.TransactionTimeout <= 0 {
		cfg.TransactionTimeout = DefaultTransactionTimeout
	}
	return &Transactional{cfg: cfg, handler: h, log: cfg.Logger}, nil
}

// Client is the current session's Kafka client, for group queries; nil
// between sessions.
func (s *Transactional) Client() *kgo.Client { return s.cl.Load() }

// Run consumes until ctx is done. A session whose transactional state
// failed (franz-go's errors from ending a transaction are not retryable)
// is closed and a new one joins after a backoff. It returns nil, or
// ErrFenced when another member took over its instance id.
func (s *Transactional) Run(ctx context.Context) error {
	ctx, fence := context.WithCancelCause(ctx)
	defer fence(nil)
	s.fence.Store(&fence)
	backoff := 500 * time.Millisecond
	for {
		started := time.Now()
		err := s.session(ctx)
		if errors.Is(context.Cause(ctx), ErrFenced) {
			return context.Cause(ctx)
		}
		if ctx.Err() != nil {
			return nil
		}
		if time.Since(started) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		s.log.Warn("transactional session failed; starting a new one", "err", err, "backoff", backoff)
		if s.cfg.OnCommitError != nil {
			s.cfg.OnCommitError(err)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// session runs one GroupTransactSession until ctx ends or its state fails.
func (s *Transactional) session(ctx context.Context) error {
	opts := append(groupOpts(s.cfg),
		kgo.TransactionalID(s.cfg.TransactionalID),
		kgo.TransactionTimeout(s.cfg.TransactionTimeout),
		// Offsets are committed in transactions only; an autocommit would
		// commit outside them.
		kgo.DisableAutoCommit(),
		kgo.RequireStableFetchOffsets(),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, added map[string][]int32) {
			s.held.change(added, true, s.cfg.OnAssignment)
		}),
		kgo.OnPartitionsRevoked(s.revoked),
		kgo.OnPartitionsLost(s.revoked),
		kgo.WithHooks(groupHook{s.fenced}),
	)
	opts = append(opts, s.cfg.ClientOpts...)
	sess, err := kgo.NewGroupTransactSession(opts...)
	if err != nil {
		return fmt.Errorf("source: kafka client: %w", err)
	}
	s.cl.Store(sess.Client())
	defer func() {
		s.cl.Store(nil)
		sess.Close()
		s.held.change(nil, false, s.cfg.OnAssignment)
	}()
	// franz-go initializes the producer id lazily, at the first produce;
	// but a predecessor with our transactional id killed mid-transaction
	// left the partitions' offsets unstable, so the group's offset fetch
	// fails (UNSTABLE_OFFSET_COMMIT) and we would never poll to produce.
	// InitProducerID now fences that predecessor and aborts its
	// transaction at once, instead of after the transaction timeout.
	ictx, icancel := context.WithTimeout(ctx, 30*time.Second)
	_, _, err = sess.Client().ProducerID(ictx)
	icancel()
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("init producer id: %w", err)
	}
	retry := 0
	for {
		fetches := sess.PollRecords(ctx, 10000)
		if ctx.Err() != nil {
			return nil
		}
		var fatal error
		fetches.EachError(func(topic string, partition int32, err error) {
			switch {
			case errors.Is(err, context.Canceled), errors.Is(err, kgo.ErrClientClosed):
			case errors.Is(err, kerr.FencedInstanceID):
				s.fenced(err)
				fatal = err
			default:
				s.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
				if s.cfg.OnPollError != nil {
					s.cfg.OnPollError(err)
				}
			}
		})
		if fatal != nil {
			return fatal
		}
		n := fetches.NumRecords()
		if n == 0 {
			continue
		}
		if s.cfg.OnPolled != nil {
			s.cfg.OnPolled(n)
		}
		if err := sess.Begin(); err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		txn := &txnProducer{sess: sess, stop: make(chan struct{})}
		s.txn.Store(txn)
		complete := s.deliver(ctx, fetches, txn)
		s.txn.Store(nil)
		commit := complete && txn.failure() == nil
		// Ending is one request or two, and must happen even when the pipe
		// is stopping: an open transaction holds the partitions' offsets
		// unstable until it times out.
		ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		committed, err := sess.End(ectx, kgo.TransactionEndTry(commit))
		cancel()
		txn.halt() // anything still watching the transaction lets go
		if committed {
			retry = 0
			if s.cfg.OnCommitted != nil {
				s.cfg.OnCommitted(n)
			}
			continue
		}
		if s.cfg.OnTxnAbort != nil {
			s.cfg.OnTxnAbort(abortReason(complete, txn.failure(), err))
		}
		if err != nil {
			return fmt.Errorf("end transaction: %w", err)
		}
		// The session rewound to the committed offsets: the poll is read
		// again, after a backoff when a produce failed.
		if txn.failure() != nil {
			retry++
			d := min(200*time.Millisecond<<min(retry, 6), 10*time.Second)
			t := time.NewTimer(d)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
		}
	}
}

// ErrTxnProduce is the reason of a transaction aborted because a record
// produced in it failed.
var ErrTxnProduce = errors.New("a record produced in the transaction failed")

// abortReason says why a transaction did not commit.
func abortReason(complete bool, produceErr, endErr error) error {
	switch {
	case produceErr != nil:
		return fmt.Errorf("%w: %w", ErrTxnProduce, produceErr)
	case endErr != nil:
		return endErr
	case !complete:
		return errors.New("records were left unfinished (the pipe or a partition is stopping)")
	}
	return errors.New("the group rebalanced before the transaction ended")
}

// deliver hands the poll's records to the handler, per partition in
// offset order and partitions concurrently, and reports whether every
// record ended final.
func (s *Transactional) deliver(ctx context.Context, fetches kgo.Fetches, txn *txnProducer) bool {
	// Attempts outlive a canceled ctx by the stop grace, as the Source's
	// do: a stop lets the current attempt finish and starts no other.
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go func() {
		select {
		case <-ctx.Done():
			txn.halt()
		case <-hctx.Done():
			return
		}
	}()
	go func() {
		select {
		case <-txn.stop:
		case <-hctx.Done():
			return
		}
		t := time.NewTimer(s.cfg.StopGrace)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-hctx.Done():
		}
	}()
	var wg sync.WaitGroup
	var incomplete atomic.Bool
	fetches.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) == 0 {
			return
		}
		wg.Add(1)
		go func(recs []*kgo.Record) {
			defer wg.Done()
			if !s.partition(hctx, recs, txn) {
				incomplete.Store(true)
			}
		}(p.Records)
	})
	wg.Wait()
	return !incomplete.Load()
}

// partition delivers one partition's records of a poll, cut into batches
// as the Source cuts them, and reports whether all ended final.
func (s *Transactional) partition(ctx context.Context, recs []*kgo.Record, txn *txnProducer) bool {
	for len(recs) > 0 {
		if txn.stopped() {
			return false
		}
		b := s.cut(recs, txn)
		res := s.handler(ctx, b)
		n := min(res.Final(), b.Len())
		recs = recs[n:]
		if err := res.Err(); err != nil && txn.failure() != nil {
			txn.explain(err)
		}
		if n < b.Len() && (n == 0 || txn.stopped()) {
			// Not final and stopping, or no progress at all (which a
			// handler answers only when asked to stop): the transaction
			// aborts and the poll is read again.
			if n == 0 && !txn.stopped() {
				s.log.Warn("handler returned a batch unfinished without stopping; aborting the transaction", "topic", b.Topic, "partition", b.Partition, "err", res.Err())
			}
			return false
		}
	}
	return true
}

// cut is the longest batch at the start of recs that BatchSize and
// MaxBatchBytes allow (a single record over the byte limit is a batch of
// its own, Oversized).
func (s *Transactional) cut(recs []*kgo.Record, txn *txnProducer) *batch.Batch {
	cfg := &s.cfg
	size := cfg.EnvelopeSize(recs[0].Topic, recs[0].Partition)
	n := 0
	oversized := false
	for _, r := range recs {
		sz := cfg.SizeOf(r)
		if size+sz > cfg.MaxBatchBytes {
			if n == 0 {
				n, size, oversized = 1, size+sz, true
			}
			break
		}
		n++
		size += sz
		if n == cfg.BatchSize {
			break
		}
	}
	b := batch.NewInTxn(recs[:n:n], txn.stop, txn)
	b.Size, b.Oversized = size, oversized
	return b
}

// revoked stops the transaction being delivered: the session aborts it
// (the partitions may already be another member's), and it should end
// soon so the rebalance is not held up.
func (s *Transactional) revoked(_ context.Context, _ *kgo.Client, tps map[string][]int32) {
	if len(tps) == 0 {
		return
	}
	s.held.change(tps, false, s.cfg.OnAssignment)
	if t := s.txn.Load(); t != nil {
		t.halt()
	}
}

func (s *Transactional) fenced(err error) {
	if f := s.fence.Load(); f != nil {
		(*f)(fmt.Errorf("%w (%v)", ErrFenced, err))
	}
}

// txnProducer is a transaction as the batches see it (batch.Txn): it
// produces through the session and remembers the first failure, which
// dooms the transaction and stops its batches.
type txnProducer struct {
	sess *kgo.GroupTransactSession
	stop chan struct{}
	once sync.Once
	mu   sync.Mutex
	err  error
	// explained is the target's account of the failure (naming the fix),
	// shown instead of the producer's bare error.
	explained error
}

func (t *txnProducer) explain(err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.explained == nil {
		t.explained = err
	}
}

var _ batch.Txn = (*txnProducer)(nil)

func (t *txnProducer) Produce(ctx context.Context, r *kgo.Record, promise func(*kgo.Record, error)) {
	t.sess.Produce(ctx, r, func(r *kgo.Record, err error) {
		if err != nil {
			t.mu.Lock()
			if t.err == nil {
				t.err = err
			}
			t.mu.Unlock()
			t.halt()
		}
		promise(r, err)
	})
}

// failure is the first produce failure, as the target explained it if it
// did.
func (t *txnProducer) failure() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err != nil && t.explained != nil {
		return t.explained
	}
	return t.err
}

// halt stops the transaction's batches: no new attempts.
func (t *txnProducer) halt() { t.once.Do(func() { close(t.stop) }) }

func (t *txnProducer) stopped() bool {
	select {
	case <-t.stop:
		return true
	default:
		return false
	}
}
