package pipe

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func kafkaSpec(k KafkaTarget) Spec {
	s := valid()
	s.Target = Target{Kafka: &k}
	return s
}

func TestKafkaTargetDefaultsAreAtLeastOnceIdempotent(t *testing.T) {
	s := kafkaSpec(KafkaTarget{Topic: "out"})
	if err := s.Validate(time.Now()); err != nil {
		t.Fatal(err)
	}
	k := *s.Normalize().Target.Kafka
	if k.Acks != "all" || !*k.Idempotence || k.MaxInFlightRequests != 5 || *k.Retries != Unlimited || k.Delivery != AtLeastOnce ||
		k.Key != KeyRecord || k.Partitioner != PartitionerMurmur2 || k.DeliveryTimeoutSeconds != 30 || k.Compression != "none" {
		t.Fatalf("normalized %+v", k)
	}
	if err := s.Normalize().Validate(time.Now()); err != nil {
		t.Fatalf("the normalized spec is refused: %v", err)
	}
	// acks 0 turns idempotence off, as Kafka's producer does.
	z := kafkaSpec(KafkaTarget{Topic: "out", Acks: "0", Delivery: AtMostOnce}).Normalize()
	if *z.Target.Kafka.Idempotence || z.Target.Kafka.MaxInFlightRequests != 1 {
		t.Fatalf("acks 0: %+v", *z.Target.Kafka)
	}
	if err := z.Validate(time.Now()); err != nil {
		t.Fatal(err)
	}
}

// The seed's quality-of-service rules, each refused naming its field.
func TestKafkaTargetRefusesWhatBreaksTheGuarantee(t *testing.T) {
	no, zero, one := ptr(false), ptr(0), ptr(1)
	cases := []struct {
		name  string
		k     KafkaTarget
		field string
		want  string
	}{
		{"no topic", KafkaTarget{}, "target.kafka.topic", "required"},
		{"loop", KafkaTarget{Topic: "orders"}, "target.kafka.topic", "for ever"},
		{"at least once acks 1", KafkaTarget{Topic: "o", Acks: "1"}, "target.kafka.acks", "all in-sync replicas"},
		{"reorder", KafkaTarget{Topic: "o", Idempotence: no, MaxInFlightRequests: 3}, "target.kafka.maxInFlightRequests", "reorder"},
		{"at most once reorder", KafkaTarget{Topic: "o", Acks: "1", Delivery: AtMostOnce, MaxInFlightRequests: 2, Retries: one}, "target.kafka.maxInFlightRequests", "order"},
		{"idempotence needs all", KafkaTarget{Topic: "o", Acks: "1", Idempotence: ptr(true), Delivery: AtMostOnce}, "target.kafka.idempotence", "acks all"},
		{"idempotent in flight", KafkaTarget{Topic: "o", MaxInFlightRequests: 2}, "target.kafka.maxInFlightRequests", "always uses 5"},
		{"in flight range", KafkaTarget{Topic: "o", Idempotence: no, MaxInFlightRequests: 6}, "target.kafka.maxInFlightRequests", "1–5"},
		{"eos other cluster", KafkaTarget{Topic: "o", Cluster: "other", Delivery: ExactlyOnce}, "target.kafka.cluster", "own cluster"},
		{"eos acks", KafkaTarget{Topic: "o", Acks: "1", Delivery: ExactlyOnce}, "target.kafka.acks", "transactions"},
		{"eos idempotence", KafkaTarget{Topic: "o", Idempotence: no, Delivery: ExactlyOnce}, "target.kafka.idempotence", "idempotent"},
		{"eos retries", KafkaTarget{Topic: "o", Retries: zero, Delivery: ExactlyOnce}, "target.kafka.retries", "retry"},
		{"delivery", KafkaTarget{Topic: "o", Delivery: "ONCE"}, "target.kafka.delivery", "AT_LEAST_ONCE"},
		{"key", KafkaTarget{Topic: "o", Key: "value"}, "target.kafka.key", "header:NAME"},
		{"json path", KafkaTarget{Topic: "o", Key: "$.a..b"}, "target.kafka.key", "JSON path"},
		{"partitioner", KafkaTarget{Topic: "o", Partitioner: "random"}, "target.kafka.partitioner", "murmur2"},
		{"compression", KafkaTarget{Topic: "o", Compression: "brotli"}, "target.kafka.compression", "zstd"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := kafkaSpec(c.k).Validate(time.Now())
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %v, want a ValidationError", err)
			}
			for _, f := range ve.Fields {
				if f.Field == c.field && strings.Contains(f.Reason, c.want) {
					return
				}
			}
			t.Fatalf("got %v, want %s: …%s…", err, c.field, c.want)
		})
	}
	// The seed's allowed ones.
	for _, k := range []KafkaTarget{
		{Topic: "o", Idempotence: no, MaxInFlightRequests: 1},                // retries, one in flight
		{Topic: "o", Idempotence: no, MaxInFlightRequests: 5, Retries: zero}, // no retries
		{Topic: "o", Acks: "0", Delivery: AtMostOnce, MaxInFlightRequests: 5},
		{Topic: "o", Delivery: ExactlyOnce, Key: "header:ce-subject"},
		{Topic: "orders", Cluster: "other"}, // the same name on another cluster
	} {
		if err := kafkaSpec(k).Validate(time.Now()); err != nil {
			t.Errorf("%+v refused: %v", k, err)
		}
	}
}

func TestTargetWithTwoSectionsIsRefused(t *testing.T) {
	s := valid()
	s.Target.Kafka = &KafkaTarget{Topic: "o"}
	err := s.Validate(time.Now())
	if err == nil || !strings.Contains(err.Error(), "exactly one target section") {
		t.Fatalf("got %v", err)
	}
}
