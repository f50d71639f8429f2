// Package observe defines what Sluice reports about a pipe besides its
// spec and stored status: the description behind `sluice pipes describe`
// and GET /v1/pipes/{name}/describe. The engine fills it, the API serves
// it, the CLI prints it; like package pipe it does no I/O, so the CLI can
// use it without the data plane.
package observe

import "time"

// Description is a pipe's state as one process of Sluice sees it.
type Description struct {
	Name            string   `json:"name"`
	UUID            string   `json:"uuid"`
	ConsumerGroupID string   `json:"consumerGroupId"`
	Topics          []string `json:"topics"`
	// State, StateTransitionReason and LastProcessingResult are the
	// stored status (pipe.Status).
	State                 string `json:"state"`
	StateTransitionReason string `json:"stateTransitionReason,omitempty"`
	LastProcessingResult  string `json:"lastProcessingResult"`
	// Running says whether this process runs a consumer for the pipe.
	// With several processes sharing a store, throughput and the last
	// error are this process's only; lag is the group's, whoever consumes.
	Running bool `json:"running"`
	// LastError is the latest PROBLEM result this process saw for the
	// pipe, kept after the problem cleared; nil if there was none since
	// the process started.
	LastError *Problem `json:"lastError"`
	// GroupInstanceID is this process's static member id in the pipe's
	// consumer group (its member name and the pipe's UUID); empty when it
	// does not run the pipe or joins as a dynamic member.
	GroupInstanceID string `json:"groupInstanceId,omitempty"`
	// Group is the consumer group as its coordinator last described it to
	// this process; nil when this process does not run the pipe or has
	// not asked yet.
	Group *Group `json:"group"`
	// HeldPartitions are the partitions this process holds, by topic;
	// nil when it does not run the pipe.
	HeldPartitions map[string][]int32 `json:"heldPartitions"`
	// Asleep is set while this process's runner of the pipe sleeps: it
	// saw no record for the engine's sleep-after time, left the consumer
	// group, and wakes at the next record of its topics.
	Asleep *Sleep `json:"asleep,omitempty"`
	// Retrying lists this process's partitions whose batch is failing:
	// the attempt coming next and when; empty when all deliver.
	Retrying []Retry `json:"retrying,omitempty"`
	// Lag is the latest offset lag measurement; nil until the first one.
	Lag *Lag `json:"lag"`
	// LagMeasuredBy names the member that measures the pipe's lag when it
	// is another process sharing the store (and Lag is then nil here).
	LagMeasuredBy string `json:"lagMeasuredBy,omitempty"`
	// Throughput is the records delivered recently by this process.
	Throughput Throughput `json:"throughput"`
	// Failed is what this process handed to the failure destination or
	// discarded since it started.
	Failed Failed `json:"failed"`
	// FilteredOut is the records this process's filter left out since it
	// started (committed, never delivered).
	FilteredOut int64 `json:"filteredOut"`
	// Concurrency is this process's concurrency controller of the pipe;
	// nil when it does not run the pipe.
	Concurrency *Concurrency `json:"concurrency,omitempty"`
	// Members are the processes sharing the store that run the pipe, as
	// each last wrote: which partitions it holds and its last result;
	// ordered by name. A member whose process stopped heartbeating is
	// left out.
	Members []Member `json:"members,omitempty"`
}

// Member is one process's share of a pipe.
type Member struct {
	Name                 string             `json:"name"`
	Partitions           map[string][]int32 `json:"partitions"`
	LastProcessingResult string             `json:"lastProcessingResult"`
	Updated              time.Time          `json:"updated"`
	// This is set on the member that answered the describe.
	This bool `json:"this,omitempty"`
}

// Concurrency is a pipe's batches in flight allowed now, its bounds, the
// batches in flight, and the last change with its reason.
type Concurrency struct {
	Ordering   string             `json:"ordering"`
	Current    int                `json:"current"`
	Minimum    int                `json:"minimum"`
	Maximum    int                `json:"maximum"`
	InFlight   int                `json:"inFlight"`
	LastChange *ConcurrencyChange `json:"lastChange,omitempty"`
}

// ConcurrencyChange is one move of the limit: backlog (batches waited with
// the target healthy) or throttled (429, 503, Retry-After, timeouts).
type ConcurrencyChange struct {
	From   int       `json:"from"`
	To     int       `json:"to"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Failed counts records that left the pipe undelivered, and the last such
// hand-off.
type Failed struct {
	DeadLettered int64    `json:"deadLettered"`
	Discarded    int64    `json:"discarded"`
	Last         *HandOff `json:"last,omitempty"`
}

// HandOff is one run of records made final without delivery.
type HandOff struct {
	At          time.Time `json:"at"`
	Topic       string    `json:"topic"`
	Partition   int32     `json:"partition"`
	FirstOffset int64     `json:"firstOffset"`
	LastOffset  int64     `json:"lastOffset"`
	Records     int       `json:"records"`
	Condition   string    `json:"condition"`
	// To is "destination" or "discard".
	To string `json:"to"`
}

// Retry is a failing batch of one partition.
type Retry struct {
	Topic       string `json:"topic"`
	Partition   int32  `json:"partition"`
	FirstOffset int64  `json:"firstOffset"`
	// NextAttempt is the number of the attempt to come, at NextAttemptAt.
	NextAttempt   int       `json:"nextAttempt"`
	NextAttemptAt time.Time `json:"nextAttemptAt"`
	// FailingSince is when the batch's first attempt failed.
	FailingSince time.Time `json:"failingSince"`
	// Problem is the latest attempt's failure.
	Problem string `json:"problem"`
}

// Group is one description of a consumer group by its coordinator.
type Group struct {
	// State is the coordinator's: Stable, PreparingRebalance,
	// CompletingRebalance, Empty or Dead.
	State string `json:"state"`
	// Members is how many members the coordinator lists, live or not.
	Members int `json:"members"`
	// CheckedAt is when the coordinator answered.
	CheckedAt time.Time `json:"checkedAt"`
}

// Sleep is a sleeping runner: since when, and how long it had been idle.
type Sleep struct {
	Since   time.Time `json:"since"`
	IdleFor string    `json:"idleFor"`
}

// Problem is a PROBLEM result and when it was last seen.
type Problem struct {
	Message string    `json:"message"`
	At      time.Time `json:"at"`
}

// Lag is one measurement of a pipe's offset lag.
type Lag struct {
	// MeasuredAt is when the figures were read from Kafka.
	MeasuredAt time.Time `json:"measuredAt"`
	// Error is why the latest attempt to measure failed, when it did;
	// the figures are then those of MeasuredAt.
	Error string `json:"error,omitempty"`
	// Total and Max are the sum and the largest of the partitions' lags.
	Total      int64       `json:"total"`
	Max        int64       `json:"max"`
	Partitions []Partition `json:"partitions"`
}

// Partition is one partition's offsets and lag.
type Partition struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// CommittedOffset is the consumer group's committed offset, the next
	// offset it will read; nil when the group has committed none.
	CommittedOffset *int64 `json:"committedOffset"`
	// StartOffset is the log start offset (the oldest record kept).
	StartOffset int64 `json:"startOffset"`
	// EndOffset is the high watermark, one past the last record.
	EndOffset int64 `json:"endOffset"`
	// Lag is EndOffset minus the committed offset or, without one, minus
	// the offset the starting position picks (see package metrics).
	Lag int64 `json:"lag"`
}

// Throughput is the records delivered over the last WindowSeconds.
type Throughput struct {
	WindowSeconds    int     `json:"windowSeconds"`
	Records          int64   `json:"records"`
	RecordsPerSecond float64 `json:"recordsPerSecond"`
}

// History is a pipe's recent lag and flow as this process kept it
// (package history): one point per StepSeconds from Start, oldest first,
// the last being the current step. Lag is the total lag measured in each
// step, null where there was no measurement (before the pipe existed,
// while another member measured it, or while Kafka did not answer).
// Delivered and Failed are the records this process delivered, and handed
// to the failure destination or discarded, in each step.
type History struct {
	StepSeconds int                `json:"stepSeconds"`
	Start       time.Time          `json:"start"`
	Lag         []*int64           `json:"lag"`
	Partitions  []PartitionHistory `json:"partitions"`
	// PartitionsTruncated says that the pipe has more partitions than
	// are kept one by one; Lag still counts all of them.
	PartitionsTruncated bool    `json:"partitionsTruncated,omitempty"`
	Delivered           []int64 `json:"delivered"`
	Failed              []int64 `json:"failed"`
}

// PartitionHistory is one partition's lag, point for point with
// History.Lag.
type PartitionHistory struct {
	Topic     string   `json:"topic"`
	Partition int32    `json:"partition"`
	Lag       []*int64 `json:"lag"`
}

// Overview is every stored pipe at a glance, for the console's list: one
// request however many pipes there are.
type Overview struct {
	// StepSeconds and Start place each pipe's LagSeries, oldest first.
	StepSeconds int            `json:"stepSeconds"`
	Start       time.Time      `json:"start"`
	Pipes       []PipeOverview `json:"pipes"`
}

// PipeOverview is one pipe's line in the Overview.
type PipeOverview struct {
	Name                 string `json:"name"`
	State                string `json:"state"`
	LastProcessingResult string `json:"lastProcessingResult"`
	// Lag is the latest total lag this process measured; nil before the
	// first measurement or while another member measures the pipe
	// (LagMeasuredBy).
	Lag           *int64     `json:"lag"`
	LagMeasuredBy string     `json:"lagMeasuredBy,omitempty"`
	LagSeries     []*int64   `json:"lagSeries"`
	Throughput    Throughput `json:"throughput"`
	Asleep        bool       `json:"asleep,omitempty"`
}

// FailurePeek is the first records a pipe's failure destination holds
// that were not redriven yet, read without moving the redrive's cursor.
type FailurePeek struct {
	Destination string         `json:"destination"`
	Records     []FailedRecord `json:"records"`
	// More says that the destination holds more than Records.
	More bool `json:"more"`
}

// FailedRecord is one record as the failure destination keeps it. Key
// and Value are text when they are UTF-8, else base64 with the Base64
// flag set; nil is an absent key or a tombstone.
type FailedRecord struct {
	Topic     string    `json:"topic"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
	Timestamp time.Time `json:"timestamp"`
	Key       *string   `json:"key"`
	Value     *string   `json:"value"`
	Base64    bool      `json:"base64,omitempty"`
	Headers   int       `json:"headers,omitempty"`
}
