package consumer

import "time"

// SetTopicGoneAfter sets how long a topic's fetches fail before the agent
// takes it for gone, and returns what puts the default back.
func SetTopicGoneAfter(d time.Duration) (restore func()) {
	old := topicGoneAfter
	topicGoneAfter = d
	return func() { topicGoneAfter = old }
}
