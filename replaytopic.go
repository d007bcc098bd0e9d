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
// "_" and two lower-case hex digits, and a name that would still be too long
// is cut and completed with "_7a" and a hash of the whole group name. '_' is
// the escape, so it is written "_5f" itself (group pay_reports has
// eventkit.replay.pay_5freports).
//
// Two groups never share a replay topic, and no two replay topics collide in
// Kafka's metric names, where '.' and '_' are the same: read with every '_'
// as '.', a name still spells its group. A '.' followed by two lower-case
// hex digits is an escape there, so a '.' of the group that is followed by
// two of them is escaped too ("_2e": group a.5fb has eventkit.replay.a_2e5fb,
// not the a.5fb that group a_b's a_5fb reads as). A cut name holds ".7a"
// read so, which no whole name does: 'z' is never escaped.
func ReplayTopic(group string) string {
	var b strings.Builder
	b.WriteString(ReplayTopicPrefix)
	for i := 0; i < len(group); i++ {
		c := group[i]
		switch {
		case c == '.' && i+2 < len(group) && lowerHex(group[i+1]) && lowerHex(group[i+2]):
			b.WriteString("_2e")
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '.', c == '-':
			b.WriteByte(c)
		default:
			b.WriteByte('_')
			b.WriteString(hex.EncodeToString([]byte{c}))
		}
	}
	name := b.String()
	if len(name) <= MaxTopicLen {
		return name
	}
	sum := sha256.Sum256([]byte(group))
	mark := "_7a" + hex.EncodeToString(sum[:8])
	return name[:MaxTopicLen-len(mark)] + mark
}

// MaxTopicLen is the longest topic name Kafka takes, in bytes.
const MaxTopicLen = 249

func lowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }
