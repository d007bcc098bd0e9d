package consumer

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/eventkit/eventkit"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// replayExcluded refuses a regex subscription whose exclusions (the
// caller's kgo.ConsumeExcludeTopics) also exclude the group's replay
// topic: replays addressed to the group would never reach it, and nothing
// would say why. A broad exclusion such as ^eventkit\. is the usual cause.
func (c *Consumer) replayExcluded(cl *kgo.Client) error {
	if !c.cfg.replay || !c.cfg.regex {
		return nil
	}
	rt := eventkit.ReplayTopic(c.cfg.group)
	for _, v := range cl.OptValues(kgo.ConsumeExcludeTopics) {
		patterns, _ := v.([]string)
		for _, p := range patterns {
			if re, err := regexp.Compile(p); err == nil && re.MatchString(rt) {
				return fmt.Errorf("consumer: the exclusion %q also excludes the group's replay topic %s, so replays to group %q would never arrive: narrow it to spare that topic, or turn the replay topic off with consumer.ReplayTopic(false)", p, rt, c.cfg.group)
			}
		}
	}
	return nil
}

// otherReplayTopics is a pattern of every replay topic but group's own
// (every one, when the group does not consume its own): RE2 has no
// lookahead, so "not this name" is spelled out a character at a time.
func otherReplayTopics(group string, own bool) string {
	prefix := "^" + regexp.QuoteMeta(eventkit.ReplayTopicPrefix)
	if !own {
		return prefix
	}
	name := strings.TrimPrefix(eventkit.ReplayTopic(group), eventkit.ReplayTopicPrefix)
	// At each character: the name ends here, or differs here, or goes on
	// as the group's does; past its end, any further character differs.
	var b strings.Builder
	for i := range len(name) {
		c := regexp.QuoteMeta(name[i : i+1]) // the name holds only [A-Za-z0-9._-]
		b.WriteString("(?:$|[^" + c + "]|" + c)
	}
	b.WriteString(".")
	b.WriteString(strings.Repeat(")", len(name)))
	return prefix + b.String()
}

// widestTopic returns the largest partition count among the topics the
// agent consumes (1 when none exists yet), so that a replay keyed like the
// original keeps its keys apart as widely as the original did.
func (c *Consumer) widestTopic(ctx context.Context, adm *kadm.Client) int32 {
	widest := int32(1)
	var topics kadm.TopicDetails
	var err error
	if c.cfg.regex {
		topics, err = adm.ListTopics(ctx)
	} else {
		topics, err = adm.ListTopics(ctx, c.cfg.topics...)
	}
	if err != nil {
		return widest
	}
	var res []*regexp.Regexp
	if c.cfg.regex {
		for _, t := range c.cfg.topics {
			if re, err := regexp.Compile(t); err == nil {
				res = append(res, re)
			}
		}
	}
	for name, td := range topics {
		if td.Err != nil {
			continue
		}
		if c.cfg.regex && (!matchAny(res, name) || strings.HasPrefix(name, eventkit.ReplayTopicPrefix)) {
			continue // replay topics are sized from the sources, not from each other
		}
		widest = max(widest, int32(len(td.Partitions)))
	}
	return widest
}

func matchAny(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}
