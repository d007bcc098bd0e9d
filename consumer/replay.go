package consumer

import (
	"context"
	"regexp"

	"github.com/twmb/franz-go/pkg/kadm"
)

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
		if c.cfg.regex && !matchAny(res, name) {
			continue
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
