// Package kafka wires eventkit to Apache Kafka through franz-go: how a client
// reaches a cluster ([Config], with TLS and SASL for managed clusters such as
// Confluent Cloud), how events become records and back ([RecordOf],
// [EventOf]), how they are published ([Publisher]), the few admin calls the
// tools need ([EnsureTopic], [PartitionCount], [GroupLag]), and the embedded
// broker that development and tests run on ([StartBroker]).
//
// The package hands out *kgo.Client values rather than hiding them behind an
// interface: franz-go's client is the API, and tests run against the embedded
// broker instead of a mock.
//
//	cl, err := kafka.Connect(ctx, kafka.ConfigFromEnv())
//	if err != nil {
//		return err // says whether the broker is down, the password wrong or the certificate untrusted
//	}
//	defer cl.Close()
//	pub := kafka.NewPublisher(cl, kafka.Source("/payments/transfers"))
//	err = pub.Publish(ctx, "transfers", &eventkit.Event{
//		Type: "payments.transfer.created", Key: []byte(account),
//		ContentType: "application/json", Data: body,
//	})
package kafka
