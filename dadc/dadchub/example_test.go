package dadchub_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/advspace/advspace/dadc"
	"github.com/advspace/advspace/dadc/dadchub"
	"github.com/advspace/advspace/dadc/dadctest"
	"github.com/advspace/advspace/hfhub"
	"github.com/advspace/advspace/hfhub/hubtest"
)

// A trainer publishes a model in one commit; a replica's follower sees the
// new head, downloads and verifies the weights, and adopts the model.
func Example() {
	hub := hubtest.New(nil) // a fake Hub; use hfhub.NewClient's defaults for the real one
	client, _ := hfhub.NewClient(&hfhub.Options{Endpoint: "http://hub.test", Token: hubtest.DefaultToken,
		HTTPClient: &http.Client{Transport: hub.Transport()}})
	repo := client.Repo(hfhub.Model, hfhub.RepoID{Namespace: hubtest.DefaultUser, Name: "digits-model"})
	ctx := context.Background()

	dir, _ := os.MkdirTemp("", "dadchub-example")
	defer os.RemoveAll(dir)
	store, err := dadchub.NewStore(repo, dir, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	card := dadc.ModelCard{Version: "v1", Round: 1, Parent: "v0", TrainSamples: 24}
	if err := store.Save(ctx, card, func(w io.Writer) error { _, err := io.WriteString(w, "weights"); return err }); err != nil {
		fmt.Println(err)
		return
	}

	// The replica: a Loop serving v0 that follows the model repo.
	loop, _ := dadc.NewLoop[int](dadctest.NewModel("v0", 10, func(int) int { return 0 }), dadctest.NewFlagger[int](nil), dadc.Manual(), 10,
		&dadc.Options[int]{})
	defer loop.Close(ctx)
	loader := dadc.LoaderFunc[int](func(_ context.Context, card dadc.ModelCard, r io.Reader) (dadc.Model[int], error) {
		return dadctest.NewModel(card.Version, 10, func(int) int { return 0 }), nil
	})
	follower, _ := dadchub.NewFollower[int](store, loader, loop, "v0", nil)
	changed, err := follower.Check(ctx) // Run(ctx) checks at an interval
	fmt.Println(changed, err)
	st := loop.Stats()
	fmt.Println(st.ModelVersion, st.Round)
	// Output:
	// true <nil>
	// v1 1
}
