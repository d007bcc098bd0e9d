package eventkit

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// ReplayTopicPrefix starts the name of every group's replay topic.
const ReplayTopicPrefix = "eventkit.replay."

// ReplayTopic names the topic that carries replays to one consumer group
// only: every agent of the group consumes it besides its own topics.
//
// Kafka topic names allow only ASCII letters, digits, '.', '_' and '-', and
// at most 249 characters; any other byte of the group name is written as
// "_" and two hex digits, and a name that would still be too long is cut and
// completed with a hash of the whole group name. '_' is the escape, so it is
// written "_5f" itself (group pay_reports has eventkit.replay.pay_5freports):
// two groups never share a replay topic, and none collides with another in
// Kafka's metric names, where '.' and '_' are the same.
func ReplayTopic(group string) string {
	var b strings.Builder
	b.WriteString(ReplayTopicPrefix)
	for i := 0; i < len(group); i++ {
		c := group[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteString(hex.EncodeToString([]byte{c}))
		}
	}
	name := b.String()
	if len(name) <= 249 {
		return name
	}
	sum := sha256.Sum256([]byte(group))
	return name[:249-17] + "_" + hex.EncodeToString(sum[:8])
}
