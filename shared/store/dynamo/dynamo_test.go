package dynamo_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/otakit/ota/shared/store"
	"github.com/otakit/ota/shared/store/dynamo"
	"github.com/otakit/ota/shared/store/storetest"
	"github.com/otakit/ota/shared/testenv"
)

// newTable creates a fresh table on DynamoDB Local and deletes it after the test.
func newTable(t *testing.T) (*dynamodb.Client, string) {
	t.Helper()
	client := testenv.DynamoClient(t, testenv.DynamoEndpoint(t))
	name := testenv.TableName(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := dynamo.CreateTable(ctx, client, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := dynamo.DeleteTable(ctx, client, name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return client, name
}

func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Table {
		client, name := newTable(t)
		return dynamo.New(client, name)
	})
}

func TestCreateTable(t *testing.T) {
	client, name := newTable(t)
	ctx := t.Context()
	// idempotent
	if err := dynamo.CreateTable(ctx, client, name); err != nil {
		t.Fatalf("second CreateTable: %v", err)
	}
	d, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	tbl := d.Table
	if tbl.TableStatus != types.TableStatusActive {
		t.Fatalf("status %s", tbl.TableStatus)
	}
	if tbl.BillingModeSummary == nil || tbl.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Fatalf("billing mode %+v, want PAY_PER_REQUEST", tbl.BillingModeSummary)
	}
	keys := map[string]types.KeyType{}
	for _, k := range tbl.KeySchema {
		keys[aws.ToString(k.AttributeName)] = k.KeyType
	}
	if len(keys) != 2 || keys["pk"] != types.KeyTypeHash || keys["sk"] != types.KeyTypeRange {
		t.Fatalf("key schema %v", keys)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	if ttl.TimeToLiveDescription == nil || aws.ToString(ttl.TimeToLiveDescription.AttributeName) != "exp" ||
		ttl.TimeToLiveDescription.TimeToLiveStatus != types.TimeToLiveStatusEnabled {
		t.Fatalf("TTL %+v, want enabled on exp", ttl.TimeToLiveDescription)
	}
}

// TestStoredAttributes pins the on-table layout documented in docs/dynamodb.md.
func TestStoredAttributes(t *testing.T) {
	client, name := newTable(t)
	ctx := t.Context()
	tb := dynamo.New(client, name)
	exp := time.Now().Add(time.Hour).Unix()
	if _, err := tb.Put(ctx, store.Item{PK: "APPS", SK: "a", Data: []byte(`{"id":"a"}`), Expires: exp}, store.Cond{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Add(ctx, "APPS", "a", 2, exp); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Put(ctx, store.Item{PK: "APPS", SK: "b", Data: []byte(`{}`)}, store.Cond{}); err != nil {
		t.Fatal(err)
	}
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(name),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "APPS"}, "sk": &types.AttributeValueMemberS{Value: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"pk": "S", "sk": "S", "d": "B", "rev": "N", "exp": "N", "n": "N"}
	for k, v := range out.Item {
		var kind string
		switch v.(type) {
		case *types.AttributeValueMemberS:
			kind = "S"
		case *types.AttributeValueMemberB:
			kind = "B"
		case *types.AttributeValueMemberN:
			kind = "N"
		}
		if want[k] != kind {
			t.Errorf("attribute %s is %s, want %s", k, kind, want[k])
		}
		delete(want, k)
	}
	if len(want) != 0 {
		t.Errorf("missing attributes %v", want)
	}
	out, err = client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(name),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "APPS"}, "sk": &types.AttributeValueMemberS{Value: "b"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := out.Item["exp"]; ok {
		t.Error("an item that never expires stores exp")
	}
}
