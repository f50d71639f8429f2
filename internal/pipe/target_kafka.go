package pipe

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// KafkaTarget produces each record (or each item of a transformed batch)
// to a Kafka topic, on the pipe's cluster or on any registered cluster.
//
// Its quality of service follows the producer rules of Kafka (and of the
// reference's seed on producer quality of service): acks, idempotence,
// retries and requests in flight decide whether a record can be lost,
// duplicated or reordered, and Validate refuses the combinations that
// would break the chosen Delivery guarantee.
type KafkaTarget struct {
	// Cluster names a registered cluster to produce to; "" is the pipe's
	// own cluster (or its bootstrapServers).
	Cluster string `json:"cluster,omitempty"`
	// Topic receives the records; it must exist (Sluice does not create
	// topics).
	Topic string `json:"topic"`
	// Key is what each produced record is keyed by: "key" (the source
	// record's key, the default), "none", "header:NAME" (the value of
	// the source record's header NAME, e.g. header:ce-subject as the
	// CloudEvents convention partitions by) or "$.PATH" (a JSON path into
	// the produced value, e.g. $.order.id; a string is its text, any
	// other value its JSON). A record without the header or path is
	// produced without a key.
	Key string `json:"key,omitempty"`
	// Partitioner picks each record's partition: "murmur2" (the default,
	// Kafka's Java default partitioner: a keyed record goes where a Java
	// producer would put it, an unkeyed one sticks to a partition per
	// batch) or "source" (the source record's partition number, modulo
	// the topic's partitions).
	Partitioner string `json:"partitioner,omitempty"`
	// Acks is "all" (the default: every in-sync replica), "1" (the
	// leader) or "0" (none: the producer does not wait).
	Acks string `json:"acks,omitempty"`
	// Idempotence makes retried produce requests unable to write a record
	// twice or out of order. Default on when acks is all, as in Kafka's
	// producer; it requires acks all.
	Idempotence *bool `json:"idempotence,omitempty"`
	// MaxInFlightRequests is the produce requests in flight per broker:
	// 1–5 for a producer without idempotence (default 1); an idempotent
	// one always has 5.
	MaxInFlightRequests int `json:"maxInFlightRequests,omitempty"`
	// Retries is how often the producer retries a record before it fails
	// it: -1 (until the delivery timeout, the default) or 0–2147483647.
	Retries *int `json:"retries,omitempty"`
	// DeliveryTimeoutSeconds bounds how long a record may take to be
	// acknowledged, retries included (default 30, max 840); past it the
	// record fails and the pipe's retry policy takes over.
	DeliveryTimeoutSeconds float64 `json:"deliveryTimeoutSeconds,omitempty"`
	// Delivery is the guarantee: AT_LEAST_ONCE (the default: source
	// offsets are committed only after every produced record was
	// acknowledged), AT_MOST_ONCE (offsets are committed without waiting
	// for the outcome) or EXACTLY_ONCE (records are produced and source
	// offsets committed in one Kafka transaction; same cluster only).
	Delivery string `json:"delivery,omitempty"`
	// Compression of produced batches: none (the default, as Kafka's
	// producer), gzip, snappy, lz4 or zstd.
	Compression string `json:"compression,omitempty"`
	// DropHeaders leaves the source record's headers out; by default they
	// are carried over.
	DropHeaders bool `json:"dropHeaders,omitempty"`
	// CloudEventsHeaders adds the CloudEvents Kafka binding's ce-*
	// headers (ce-specversion, ce-id, ce-source, ce-type, ce-subject,
	// ce-time) describing the source record.
	CloudEventsHeaders bool `json:"cloudEventsHeaders,omitempty"`
}

// Delivery guarantees of a Kafka target.
const (
	AtLeastOnce = "AT_LEAST_ONCE"
	AtMostOnce  = "AT_MOST_ONCE"
	ExactlyOnce = "EXACTLY_ONCE"
)

// Keys and partitioners of a Kafka target.
const (
	KeyRecord            = "key"
	KeyNone              = "none"
	KeyHeaderPrefix      = "header:"
	PartitionerMurmur2   = "murmur2"
	PartitionerSource    = "source"
	DefaultKafkaInFlight = 5
	// MaxKafkaInFlight is Kafka's bound for an idempotent producer: the
	// broker keeps the sequence numbers of the last five batches only.
	MaxKafkaInFlight = 5
)

// jsonPathRE is $.a.b[0].c: members of letters, digits, '_' and '-', and
// array indexes.
var jsonPathRE = regexp.MustCompile(`^\$(\.[A-Za-z0-9_-]+|\[[0-9]+\])+$`)

// IsIdempotent reports whether the producer is idempotent.
func (t KafkaTarget) IsIdempotent() bool {
	if t.Idempotence != nil {
		return *t.Idempotence
	}
	return t.Acks == "" || t.Acks == "all" || t.Acks == "-1"
}

// InFlight is the produce requests in flight per broker.
func (t KafkaTarget) InFlight() int {
	switch {
	case t.MaxInFlightRequests > 0:
		return t.MaxInFlightRequests
	case t.IsIdempotent():
		return DefaultKafkaInFlight
	}
	return 1
}

// RetryCount is the producer's retries per record; -1 is until the
// delivery timeout.
func (t KafkaTarget) RetryCount() int {
	if t.Retries == nil {
		return Unlimited
	}
	return *t.Retries
}

// normalize fills in the defaults, so what is shown is what runs.
func (t KafkaTarget) normalize() KafkaTarget {
	if t.Key == "" {
		t.Key = KeyRecord
	}
	if t.Partitioner == "" {
		t.Partitioner = PartitionerMurmur2
	}
	if t.Acks == "" || t.Acks == "-1" {
		t.Acks = "all"
	}
	if t.Delivery == "" {
		t.Delivery = AtLeastOnce
	}
	if t.Compression == "" {
		t.Compression = "none"
	}
	idem := t.IsIdempotent()
	t.Idempotence = &idem
	t.MaxInFlightRequests = t.InFlight()
	if t.Retries == nil {
		r := Unlimited
		t.Retries = &r
	}
	if t.DeliveryTimeoutSeconds == 0 {
		t.DeliveryTimeoutSeconds = DefaultTargetTimeout.Seconds()
	}
	return t
}

// validateKafka checks a kafka target section against the rules of
// producer quality of service, and against the pipe it belongs to.
func validateKafka(v *ValidationError, s Spec) {
	t := s.Target.Kafka
	const f = "target.kafka."
	switch {
	case t.Topic == "":
		v.Add(f+"topic", "", "required: name the topic to produce to (it must exist)")
	case t.Topic == "." || t.Topic == ".." || len(t.Topic) > MaxTopicLength || !topicRE.MatchString(t.Topic):
		v.Add(f+"topic", strconv.Quote(t.Topic), fmt.Sprintf("a Kafka topic name is 1–%d letters, digits, '.', '_' and '-' (not '.' or '..')", MaxTopicLength))
	case t.sameCluster(s) && slices.Contains(s.Topics, t.Topic):
		v.Add(f+"topic", strconv.Quote(t.Topic), "produce to another topic than the pipe reads: every record produced would be read and produced again, for ever")
	}
	if s.Format != "" && s.Format != FormatLambda {
		v.Add("format", strconv.Quote(s.Format), "a Kafka target produces each record's value as it is, in no event format: leave format out, and reshape values with inputTemplate")
	}
	if t.Cluster != "" && (len(t.Cluster) > MaxNameLength || !nameRE.MatchString(t.Cluster)) {
		v.Add(f+"cluster", strconv.Quote(t.Cluster), "name a cluster registered with `sluice clusters set`, or leave it out for the pipe's own cluster")
	}
	switch k := t.Key; {
	case k == "", k == KeyRecord, k == KeyNone:
	case strings.HasPrefix(k, KeyHeaderPrefix):
		if strings.TrimPrefix(k, KeyHeaderPrefix) == "" {
			v.Add(f+"key", strconv.Quote(k), "name the header: header:NAME, e.g. header:ce-subject")
		}
	case strings.HasPrefix(k, "$"):
		if !jsonPathRE.MatchString(k) {
			v.Add(f+"key", strconv.Quote(k), "a JSON path is $ followed by .member or [index] steps, e.g. $.order.id or $.items[0].sku")
		}
	default:
		v.Add(f+"key", strconv.Quote(k), "use key (the source record's key, the default), none, header:NAME or a JSON path into the value such as $.order.id")
	}
	switch t.Compression {
	case "", "none", "gzip", "snappy", "lz4", "zstd":
	default:
		v.Add(f+"compression", strconv.Quote(t.Compression), "use none (the default), gzip, snappy, lz4 or zstd")
	}
	switch t.Partitioner {
	case "", PartitionerMurmur2, PartitionerSource:
	default:
		v.Add(f+"partitioner", strconv.Quote(t.Partitioner), "use murmur2 (Kafka's Java default partitioner, the default) or source (the source record's partition)")
	}
	acksOK := true
	switch t.Acks {
	case "", "all", "-1", "0", "1":
	default:
		acksOK = false
		v.Add(f+"acks", strconv.Quote(t.Acks), "use all (every in-sync replica, the default), 1 (the leader only) or 0 (no acknowledgement)")
	}
	all := t.Acks == "" || t.Acks == "all" || t.Acks == "-1"
	if n := t.MaxInFlightRequests; n < 0 || n > MaxKafkaInFlight {
		v.Add(f+"maxInFlightRequests", strconv.Itoa(n), fmt.Sprintf("use 1–%d (default %d when idempotent, else 1)", MaxKafkaInFlight, DefaultKafkaInFlight))
	}
	if r := t.Retries; r != nil && *r < Unlimited {
		v.Add(f+"retries", strconv.Itoa(*r), "use -1 (retry until the delivery timeout, the default) or 0 and up")
	}
	if d := t.DeliveryTimeoutSeconds; d < 0 || d > maxTargetTimeoutSecondsFloat {
		v.Add(f+"deliveryTimeoutSeconds", strconv.FormatFloat(d, 'f', -1, 64), fmt.Sprintf("use 0 (the default, %s) up to %d seconds", DefaultTargetTimeout, int(maxTargetTimeoutSecondsFloat)))
	}
	if n := t.MaxInFlightRequests; n > 0 && n != MaxKafkaInFlight && t.IsIdempotent() {
		// franz-go pipelines idempotent requests five deep, the most the
		// broker deduplicates; fewer would buy no guarantee.
		v.Add(f+"maxInFlightRequests", strconv.Itoa(n), fmt.Sprintf("an idempotent producer keeps the order with %d requests in flight and always uses %d: leave it out, or turn idempotence off", MaxKafkaInFlight, MaxKafkaInFlight))
	}
	if t.Idempotence != nil && *t.Idempotence && acksOK && !all {
		v.Add(f+"idempotence", "true", "an idempotent producer needs acks all: set target.kafka.acks to all, or idempotence to false")
	}
	retries := t.Retries == nil || *t.Retries != 0
	// The seed's ordering rule: with retries and more than one request in
	// flight, only the idempotent producer keeps the order it was given.
	reorders := t.Acks != "0" && retries && t.InFlight() > 1 && !t.IsIdempotent()
	switch t.Delivery {
	case "", AtLeastOnce:
		if acksOK && !all {
			v.Add(f+"acks", strconv.Quote(t.Acks), "AT_LEAST_ONCE must wait for the acknowledgement of all in-sync replicas: use acks all, or delivery AT_MOST_ONCE")
		}
		if reorders {
			v.Add(f+"maxInFlightRequests", strconv.Itoa(t.InFlight()), "with retries and more than one request in flight a non-idempotent producer can reorder records: "+
				"use 1, or turn idempotence on, or set retries to 0")
		}
	case AtMostOnce:
		if reorders {
			v.Add(f+"maxInFlightRequests", strconv.Itoa(t.InFlight()), "AT_MOST_ONCE must keep the order of records: with retries, use 1 request in flight, or set retries to 0, or turn idempotence on")
		}
	case ExactlyOnce:
		if acksOK && !all {
			v.Add(f+"acks", strconv.Quote(t.Acks), "EXACTLY_ONCE produces in transactions, which need acks all")
		}
		if t.Idempotence != nil && !*t.Idempotence {
			v.Add(f+"idempotence", "false", "EXACTLY_ONCE produces in transactions, which need the idempotent producer: leave idempotence on")
		}
		if !t.sameCluster(s) {
			v.Add(f+"cluster", strconv.Quote(t.Cluster), "EXACTLY_ONCE commits the source offsets in the transaction that produces the records, so the topic must be on the pipe's own cluster: leave target.kafka.cluster out")
		}
		if t.Retries != nil && *t.Retries == 0 {
			v.Add(f+"retries", "0", "EXACTLY_ONCE needs the producer to retry within the transaction: leave retries out (-1)")
		}
	default:
		v.Add(f+"delivery", strconv.Quote(t.Delivery), "use AT_LEAST_ONCE (the default), AT_MOST_ONCE or EXACTLY_ONCE")
	}
}

// sameCluster reports whether the target produces to the pipe's own
// cluster.
func (t KafkaTarget) sameCluster(s Spec) bool {
	return t.Cluster == "" || t.Cluster == s.Cluster
}
