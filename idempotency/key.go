package idempotency

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"unicode/utf8"

	"github.com/eventkit/eventkit"
)

// MaxKeyLen bounds the length of a key in bytes. A longer key keeps a
// readable prefix and ends in a SHA-256 of the whole key, so that two keys
// still differ when their prefixes agree.
const MaxKeyLen = 512

// hashMark starts the digest of a shortened key. A '%' followed by a letter
// beyond 'F' never appears in an escaped field, so a shortened key can never
// equal a key that was not shortened.
const hashMark = "%sha256:"

// Key returns the idempotency key of ev for a consumer group:
//
//	group|ce|source|id                        an event with a ce_id and a ce_source
//	group|rp|source|id|replay-id              the same, replayed in reprocess mode
//	group|at|topic/partition/offset           an event without one of them
//	group|ra|topic/partition/offset|replay-id the same, replayed in reprocess mode
//
// The id alone names nothing: ids are unique within a source, so two
// malformed events that share an id and lack a source are two events, and
// each is keyed by its coordinates, as one without an id is.
//
// A replay in deduplicate mode keeps the original's key, so it is a no-op
// where the original was done; a reprocess replay adds its replay id and is
// processed once more. A replayed event without a ce_id is keyed by its
// origin's coordinates (ev.Replay.OriginTopic, OriginPartition,
// OriginOffset), not by where the replay put it, so that the same rules
// hold; when the origin does not parse, the replayed record's own
// coordinates are all there is, and it is processed.
//
// The fallback to coordinates absorbs redelivery of the same record only: a
// producer that sends an event twice without an id makes two records at two
// offsets, and both are processed.
//
// Fields are escaped: '%', '|', control bytes and bytes that are not UTF-8
// become %XX. A ce_source or ce_id that is not UTF-8 (left by the binding in
// ev.Headers, with ev.DecodeErr set) is keyed by its raw bytes, escaped, so
// two such events never share a key and neither is skipped. Keys are valid
// UTF-8 without NUL bytes, which every SQL text column accepts; keys longer
// than [MaxKeyLen] are shortened as MaxKeyLen describes.
func Key(group string, ev *eventkit.Event) string {
	var arr [256]byte
	b := appendField(arr[:0], group)
	id := ev.AttributeOrRaw(ev.ID, eventkit.HeaderID)
	source := ev.AttributeOrRaw(ev.Source, eventkit.HeaderSource)
	reprocess := ev.Replay != nil && ev.Replay.Mode == eventkit.Reprocess
	if len(id) == 0 || len(source) == 0 {
		topic, partition, offset := ev.Topic, ev.Partition, ev.Offset
		// A parsed origin always has a topic.
		if r := ev.Replay; r != nil && r.OriginTopic != "" {
			topic, partition, offset = r.OriginTopic, r.OriginPartition, r.OriginOffset
		} else {
			reprocess = false // its own coordinates are new anyway
		}
		if reprocess {
			b = append(b, "|ra|"...)
		} else {
			b = append(b, "|at|"...)
		}
		b = appendField(b, topic)
		b = append(b, '/')
		b = strconv.AppendInt(b, int64(partition), 10)
		b = append(b, '/')
		b = strconv.AppendInt(b, offset, 10)
		if reprocess {
			b = append(b, '|')
			b = appendField(b, ev.Replay.ID)
		}
		return finish(b)
	}
	if reprocess {
		b = append(b, "|rp|"...)
	} else {
		b = append(b, "|ce|"...)
	}
	b = appendField(b, source)
	b = append(b, '|')
	b = appendField(b, id)
	if reprocess {
		b = append(b, '|')
		b = appendField(b, ev.Replay.ID)
	}
	return finish(b)
}

func appendField(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f || c == '%' || c == '|' {
				b = appendEscape(b, c)
			} else {
				b = append(b, c)
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b = appendEscape(b, c)
		} else {
			b = append(b, s[i:i+n]...)
		}
		i += n
	}
	return b
}

func appendEscape(b []byte, c byte) []byte {
	const digits = "0123456789ABCDEF"
	return append(b, '%', digits[c>>4], digits[c&15])
}

func finish(b []byte) string {
	if len(b) <= MaxKeyLen {
		return string(b)
	}
	sum := sha256.Sum256(b)
	cut := MaxKeyLen - len(hashMark) - hex.EncodedLen(len(sum))
	// Cut at a rune boundary and outside a %XX escape, for readability.
	for cut > 0 && !utf8.RuneStart(b[cut]) {
		cut--
	}
	if cut >= 1 && b[cut-1] == '%' {
		cut--
	} else if cut >= 2 && b[cut-2] == '%' {
		cut -= 2
	}
	out := make([]byte, 0, MaxKeyLen)
	out = append(out, b[:cut]...)
	out = append(out, hashMark...)
	out = hex.AppendEncode(out, sum[:])
	return string(out)
}
