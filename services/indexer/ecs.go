package indexer

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/hourglass-io/hourglass/internal/record"
)

// Doc is one raw-log document in ECS field names (Elastic Common Schema 8).
// Fields without an ECS home are under "hourglass".
type Doc struct {
	Timestamp    string          `json:"@timestamp"`
	Event        ecsEvent        `json:"event"`
	Organization ecsID           `json:"organization"`
	Labels       ecsLabels       `json:"labels"`
	HTTP         ecsHTTP         `json:"http"`
	URL          *ecsURL         `json:"url,omitempty"`
	Client       *ecsIP          `json:"client,omitempty"`
	UserAgent    *ecsOriginal    `json:"user_agent,omitempty"`
	Observer     *ecsName        `json:"observer,omitempty"`
	Network      *ecsNetwork     `json:"network,omitempty"`
	Hourglass    hourglassFields `json:"hourglass"`
	DataStream   ecsDataStream   `json:"data_stream"`
}

type ecsEvent struct {
	ID       string   `json:"id,omitempty"` // the request id
	Duration int64    `json:"duration"`     // nanoseconds, per ECS
	Dataset  string   `json:"dataset"`
	Kind     string   `json:"kind"`
	Category []string `json:"category"`
	Type     []string `json:"type"`
	Outcome  string   `json:"outcome"`
}

type ecsID struct {
	ID string `json:"id"`
}

type ecsLabels struct {
	Tenant string `json:"tenant"`
}

type ecsHTTP struct {
	Request  ecsMessage `json:"request"`
	Response ecsStatus  `json:"response"`
	Version  string     `json:"version,omitempty"`
}

type ecsMessage struct {
	Method string `json:"method"`
	Bytes  int64  `json:"bytes"`
}

type ecsStatus struct {
	StatusCode int   `json:"status_code"`
	Bytes      int64 `json:"bytes"`
}

type ecsURL struct {
	Path   string `json:"path,omitempty"`
	Domain string `json:"domain,omitempty"`
	Scheme string `json:"scheme,omitempty"`
}

type ecsIP struct {
	IP string `json:"ip"`
}

type ecsOriginal struct {
	Original string `json:"original"`
}

type ecsName struct {
	Name string `json:"name"`
}

type ecsNetwork struct {
	Protocol string `json:"protocol"`
}

type hourglassFields struct {
	RTTMS      *float64    `json:"rtt_ms,omitempty"`
	UpstreamMS *float64    `json:"upstream_ms,omitempty"`
	Kafka      kafkaSource `json:"kafka"`
}

type kafkaSource struct {
	Topic     string `json:"topic"`
	Partition int    `json:"partition"`
	Offset    int64  `json:"offset"`
}

type ecsDataStream struct {
	Type      string `json:"type"`
	Dataset   string `json:"dataset"`
	Namespace string `json:"namespace"`
}

// Dataset is the data stream dataset of the raw logs.
const Dataset = "hourglass.traffic"

// DocID is the document _id of the record at topic/partition/offset: a
// replay writes the same _id, which the data stream refuses as a
// duplicate (409) instead of indexing twice.
func DocID(topic string, partition int, offset int64) string {
	return topic + "-" + strconv.Itoa(partition) + "-" + strconv.FormatInt(offset, 10)
}

// NewDoc maps a record to its ECS document. namespace is the data stream's
// namespace (the part after the dataset in its name).
func NewDoc(r *record.Record, namespace, topic string, partition int, offset int64) Doc {
	d := Doc{
		Timestamp: r.Timestamp.UTC().Format(time.RFC3339Nano),
		Event: ecsEvent{
			ID:       r.RequestID,
			Duration: int64(r.DurationMS * float64(time.Millisecond)),
			Dataset:  Dataset,
			Kind:     "event",
			Category: []string{"web", "network"},
			Type:     []string{"access"},
			Outcome:  "success",
		},
		Organization: ecsID{ID: r.Tenant},
		Labels:       ecsLabels{Tenant: r.Tenant},
		HTTP: ecsHTTP{
			Request:  ecsMessage{Method: r.Method, Bytes: r.BytesIn},
			Response: ecsStatus{StatusCode: r.Status, Bytes: r.BytesOut},
		},
		Hourglass:  hourglassFields{RTTMS: r.RTTMS, UpstreamMS: r.UpstreamMS, Kafka: kafkaSource{Topic: topic, Partition: partition, Offset: offset}},
		DataStream: ecsDataStream{Type: "logs", Dataset: Dataset, Namespace: namespace},
	}
	if r.Status >= 400 {
		d.Event.Outcome = "failure"
	}
	if r.Path != "" || r.Host != "" || r.Scheme != "" {
		d.URL = &ecsURL{Path: r.Path, Domain: r.Host, Scheme: r.Scheme}
	}
	if r.ClientIP != "" {
		d.Client = &ecsIP{IP: r.ClientIP}
	}
	if r.UserAgent != "" {
		d.UserAgent = &ecsOriginal{Original: r.UserAgent}
	}
	if r.Edge != "" {
		d.Observer = &ecsName{Name: r.Edge}
	}
	if r.Protocol != "" {
		// "HTTP/1.1" → network.protocol "http", http.version "1.1" (ECS: lower case).
		name, version, _ := strings.Cut(r.Protocol, "/")
		d.Network = &ecsNetwork{Protocol: strings.ToLower(name)}
		d.HTTP.Version = version
	}
	return d
}

// MarshalDoc encodes a document.
func MarshalDoc(d Doc) ([]byte, error) { return json.Marshal(d) }
