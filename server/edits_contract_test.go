package server

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/models/synth"
)

// Edits and variations through go-openai and the official Node SDK,
// against the real pipeline: two tiny synthetic models behind the real
// registry, an ordinary UNet ("tiny") and an inpainting one
// ("tiny-inpaint"). The aliases map to "tiny".

const (
	editModel    = "tiny"
	inpaintModel = "tiny-inpaint"
)

// editGenerator writes both tiny models and serves them for one test.
func editGenerator(t *testing.T) *models.Registry {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping the real pipeline in -short mode")
	}
	open := realOpener(t)
	dir := t.TempDir()
	for id, opts := range map[string]synth.Options{
		editModel:    {Preset: "tiny"},
		inpaintModel: {Preset: "tiny", Inpaint: true},
	} {
		if _, err := synth.Write(context.Background(), filepath.Join(dir, id), opts, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	reg, err := models.NewRegistry(models.RegistryOptions{Open: open, Dir: dir, QueueSize: 8, KeepAlive: -1, MaxResident: 2, DefaultAliases: AliasNames()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close(context.Background()) })
	for _, id := range []string{editModel, inpaintModel} {
		info := findInfo(reg.Models(), id)
		if info == nil || !info.CanEncode || info.Inpainting != (id == inpaintModel) {
			t.Fatalf("model %s: %+v", id, info)
		}
	}
	return reg
}

func findInfo(infos []models.Info, id string) *models.Info {
	for i := range infos {
		if infos[i].ID == id {
			return &infos[i]
		}
	}
	return nil
}

// editHole is where the edit fixtures repaint (64x64 pictures: the tiny
// models' native size, so no resize touches the kept pixels).
var editHole = image.Rect(16, 8, 48, 40)

// bigEditHole is editHole on a 1024x1024 picture, the size "auto" gives
// the GPT image families.
var bigEditHole = image.Rect(256, 128, 768, 640)

// checkEdited compares an edited picture with the original: identical
// outside hole, and changed somewhere inside it.
func checkEdited(t *testing.T, got image.Image, orig *image.NRGBA, hole image.Rectangle) {
	t.Helper()
	if got.Bounds().Size() != orig.Rect.Size() {
		t.Fatalf("edited picture is %v, want %v", got.Bounds().Size(), orig.Rect.Size())
	}
	b := got.Bounds()
	changed := 0
	for y := range orig.Rect.Dy() {
		for x := range orig.Rect.Dx() {
			r, g, bl, _ := got.At(b.Min.X+x, b.Min.Y+y).RGBA()
			o := orig.NRGBAAt(x, y)
			same := uint8(r>>8) == o.R && uint8(g>>8) == o.G && uint8(bl>>8) == o.B
			inside := (image.Point{x, y}).In(hole)
			if !inside && !same {
				t.Fatalf("kept pixel %d,%d = %d,%d,%d, want the original %v", x, y, r>>8, g>>8, bl>>8, o)
			}
			if inside && !same {
				changed++
			}
		}
	}
	if changed == 0 {
		t.Error("nothing changed inside the repainted region")
	}
}

func TestEditContractGoOpenAIRealPipeline(t *testing.T) {
	ts := startServer(t, editGenerator(t))
	client := newClient(ts, ts.URL)
	ctx := context.Background()
	orig := testPicture(64, 64, image.Rectangle{})
	origPNG := encodeTo(t, "png", orig)
	maskPNG := encodeTo(t, "png", maskPicture(64, 64, editHole))

	for _, model := range []string{editModel, inpaintModel} {
		t.Run("mask keeps the rest exactly: "+model, func(t *testing.T) {
			resp, err := client.CreateEditImage(ctx, openai.ImageEditRequest{Model: model, Prompt: "a red hat",
				Image: bytes.NewReader(origPNG), Mask: bytes.NewReader(maskPNG)})
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Data) != 1 || resp.Usage.InputTokensDetails.ImageTokens == 0 {
				t.Fatalf("answer %+v", resp)
			}
			img, _ := decodeImage(t, imageBytes(t, ts.Client(), resp.Data[0]))
			checkEdited(t, img, orig, editHole)
		})
	}
	t.Run("gpt-image-1: the image's own transparent pixels are the mask", func(t *testing.T) {
		// 1024x1024 in, so "auto" (1024x1024) delivers the input's own size.
		holed := testPicture(1024, 1024, bigEditHole)
		resp, err := client.CreateEditImage(ctx, openai.ImageEditRequest{Model: "gpt-image-1", Prompt: "a hat",
			Image: bytes.NewReader(encodeTo(t, "png", holed)), Quality: "low", N: 2})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) != 2 || resp.Usage.OutputTokens == 0 {
			t.Fatalf("answer %+v", resp)
		}
		for _, d := range resp.Data {
			img, _ := decodeImage(t, imageBytes(t, ts.Client(), d))
			checkEdited(t, img, holed, bigEditHole)
		}
	})
	t.Run("dall-e-2 256x256 on a 64x64 model: kept pixels exact after the resize", func(t *testing.T) {
		big := testPicture(256, 256, image.Rectangle{})
		hole := image.Rect(64, 32, 192, 160)
		resp, err := client.CreateEditImage(ctx, openai.ImageEditRequest{Model: "dall-e-2", Prompt: "a hat", Size: "256x256",
			ResponseFormat: "b64_json", Image: bytes.NewReader(encodeTo(t, "png", big)),
			Mask: bytes.NewReader(encodeTo(t, "png", maskPicture(256, 256, hole)))})
		if err != nil {
			t.Fatal(err)
		}
		img, _ := decodeImage(t, imageBytes(t, ts.Client(), resp.Data[0]))
		checkEdited(t, img, big, hole)
	})
	t.Run("dall-e-2 defaults: url, 1024x1024", func(t *testing.T) {
		resp, err := client.CreateEditImage(ctx, openai.ImageEditRequest{Model: "dall-e-2", Prompt: "a hat",
			Image: bytes.NewReader(origPNG), Mask: bytes.NewReader(maskPNG)})
		if err != nil {
			t.Fatal(err)
		}
		img, _ := decodeImage(t, imageBytes(t, ts.Client(), resp.Data[0]))
		if resp.Data[0].URL == "" || img.Bounds().Size() != image.Pt(1024, 1024) {
			t.Errorf("url %q, size %v", resp.Data[0].URL, img.Bounds().Size())
		}
	})
	for _, format := range []string{"jpeg", "webp"} {
		t.Run(format+" input re-imagined whole on a local model", func(t *testing.T) {
			resp, err := client.CreateEditImage(ctx, openai.ImageEditRequest{Model: editModel, Prompt: "a hat",
				Image: bytes.NewReader(encodeTo(t, format, testPicture(96, 64, image.Rectangle{}))), Size: "96x64"})
			if err != nil {
				t.Fatal(err)
			}
			img, _ := decodeImage(t, imageBytes(t, ts.Client(), resp.Data[0]))
			if img.Bounds().Size() != image.Pt(96, 64) {
				t.Errorf("size %v", img.Bounds().Size())
			}
		})
	}
	t.Run("variations", func(t *testing.T) {
		resp, err := client.CreateVariImage(ctx, openai.ImageVariRequest{Image: bytes.NewReader(origPNG), N: 2,
			Size: "256x256", ResponseFormat: "b64_json"})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Data) != 2 {
			t.Fatalf("%d images", len(resp.Data))
		}
		a, b := imageBytes(t, ts.Client(), resp.Data[0]), imageBytes(t, ts.Client(), resp.Data[1])
		if bytes.Equal(a, b) {
			t.Error("two variations are identical")
		}
		if img, _ := decodeImage(t, a); img.Bounds().Size() != image.Pt(256, 256) {
			t.Errorf("size %v", img.Bounds().Size())
		}
		resp, err = client.CreateVariImage(ctx, openai.ImageVariRequest{Image: bytes.NewReader(origPNG)})
		if err != nil {
			t.Fatal(err)
		}
		if img, _ := decodeImage(t, imageBytes(t, ts.Client(), resp.Data[0])); img.Bounds().Size() != image.Pt(1024, 1024) {
			t.Errorf("default variation size %v", img.Bounds().Size())
		}
	})
	t.Run("errors", func(t *testing.T) {
		small := encodeTo(t, "png", maskPicture(32, 32, image.Rect(0, 0, 4, 4)))
		_, err := client.CreateEditImage(ctx, openai.ImageEditRequest{Prompt: "p", Image: bytes.NewReader(origPNG), Mask: bytes.NewReader(small)})
		checkAPIError(t, err, 400, "mask", "invalid_image")
		_, err = client.CreateVariImage(ctx, openai.ImageVariRequest{Image: bytes.NewReader(encodeTo(t, "png", testPicture(64, 32, image.Rectangle{})))})
		checkAPIError(t, err, 400, "image", "invalid_image")
		_, err = client.CreateEditImage(ctx, openai.ImageEditRequest{Model: editModel, Prompt: "p", Image: bytes.NewReader(origPNG),
			Quality: "low"})
		if err != nil {
			t.Errorf("quality low: %v", err)
		}
	})
}

func checkAPIError(t *testing.T, err error, status int, param, code string) {
	t.Helper()
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("got %v, want *openai.APIError", err)
	}
	if apiErr.HTTPStatusCode != status || apiErr.Param == nil || *apiErr.Param != param || apiErr.Code != code {
		t.Errorf("status %d param %v code %v (%s), want %d %s %s", apiErr.HTTPStatusCode, deref(apiErr.Param),
			apiErr.Code, apiErr.Message, status, param, code)
	}
}

// The real pipeline refuses what only it can judge: a strength that leaves
// no denoising step.
func TestEditStrengthChecksRealPipeline(t *testing.T) {
	ts := startServer(t, editGenerator(t))
	r := postForm(t, ts, "/v1/images/edits", filePart("image", encodeTo(t, "png", testPicture(64, 64, image.Rectangle{}))),
		textPart("prompt", "p"), textPart("model", editModel), textPart("steps", "2"), textPart("strength", "0.1"))
	if r.status != 400 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	if e := envelope(t, r); deref(e.Param) != "strength" {
		t.Errorf("param %s (%s)", deref(e.Param), e.Message)
	}
}

// TestEditContractNodeSDKRealPipeline runs testdata/openai_node_edits.cjs:
// the Node SDK sends the uploads (toFile, arrays as image[]) and saves what
// comes back; the pixels are checked here.
func TestEditContractNodeSDKRealPipeline(t *testing.T) {
	gen := editGenerator(t)
	if testing.Short() {
		t.Skip("skipping the Node SDK contract in -short mode")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: skipping the official Node SDK contract")
	}
	modules := nodeSDK(t)
	ts := startServer(t, gen)

	dir := t.TempDir()
	orig := testPicture(64, 64, image.Rectangle{})
	holed := testPicture(1024, 1024, bigEditHole)
	inputs := map[string][]byte{
		"image.png":  encodeTo(t, "png", orig),
		"mask.png":   encodeTo(t, "png", maskPicture(64, 64, editHole)),
		"small.png":  encodeTo(t, "png", maskPicture(32, 32, image.Rect(0, 0, 4, 4))),
		"holed.png":  encodeTo(t, "png", holed),
		"photo.jpg":  encodeTo(t, "jpeg", testPicture(64, 64, image.Rectangle{})),
		"photo.webp": encodeTo(t, "webp", testPicture(64, 64, image.Rectangle{})),
	}
	for name, data := range inputs {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join("testdata", "openai_node_edits.cjs"))
	cmd.Env = append(os.Environ(), "NODE_PATH="+modules, "SDGATE_BASE_URL="+ts.URL+"/v1", "SDGATE_EDIT_DIR="+dir,
		"SDGATE_LOCAL_MODEL="+editModel, "SDGATE_INPAINT_MODEL="+inpaintModel)
	out, err := cmd.CombinedOutput()
	t.Logf("node edits contract:\n%s", out)
	if err != nil {
		t.Fatalf("node edits contract failed: %v", err)
	}

	read := func(name string) image.Image {
		data, err := os.ReadFile(filepath.Join(dir, "out", name))
		if err != nil {
			t.Fatal(err)
		}
		img, _ := decodeImage(t, data)
		return img
	}
	checkEdited(t, read("edit-"+editModel+".png"), orig, editHole)
	checkEdited(t, read("edit-"+inpaintModel+".png"), orig, editHole)
	checkEdited(t, read("edit-array.png"), holed, bigEditHole)
	for name, want := range map[string]image.Point{
		"edit-webp.png": {64, 64}, "variation-0.png": {256, 256}, "variation-1.png": {256, 256},
	} {
		if got := read(name).Bounds().Size(); got != want {
			t.Errorf("%s is %v, want %v", name, got, want)
		}
	}
	if img := read("edit-jpeg.jpeg"); img.ColorModel() != color.YCbCrModel && img.ColorModel() != color.GrayModel {
		t.Errorf("edit-jpeg.jpeg decodes as %T, want a JPEG", img)
	}
}
