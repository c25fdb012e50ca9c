package dispatch

import (
	"fmt"
	"strings"
)

// Names of the shared JetStream assets.
const (
	ResultsBucket = "sdgate-results"
	WorkersBucket = "sdgate-workers"
	consumerName  = "workers"
)

// Token escapes a model id into one NATS subject token that is also valid
// in a stream name: [A-Za-z0-9-] stay, every other byte becomes _XX (hex).
// The escape is unambiguous because '_' itself is escaped.
func Token(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "_%02X", c)
	}
	return b.String()
}

func jobSubject(model string) string    { return "sdgate.jobs." + Token(model) }
func streamName(model string) string    { return "SDGATE_JOBS_" + Token(model) }
func progressSubject(job string) string { return "sdgate.progress." + job }
func resultSubject(job string) string   { return "sdgate.results." + job }
func cancelSubject(job string) string   { return "sdgate.cancel." + job }
func resultObject(job string) string    { return "res-" + job }
func inputObject(job string) string     { return "in-" + job }
