package synth

import (
	"fmt"
	"os"

	"github.com/sdgate/sdgate/sd/clip"
)

// padToken is SD 1.x's: prompts are padded with <|endoftext|>.
const padToken = "<|endoftext|>"

// corpus is what the small tokenizer learns its merges from when no CLIP
// vocabulary is given: prompt-like English, written for this package.
const corpus = `a photograph of an old lighthouse on a rocky coast at sunset, dramatic clouds,
warm golden light, highly detailed, sharp focus, wide angle lens. a watercolor painting of a
quiet village street after the rain, soft pastel colors, reflections in the puddles, people
walking with umbrellas. portrait of a young woman with red hair and green eyes, studio
lighting, shallow depth of field, oil painting in the style of the old masters. a cute robot
reading a book in a cozy library, digital art, concept art, trending illustration, vibrant
colors. a mountain lake in the morning with mist over the water and pine trees on the shore,
landscape photography, long exposure, calm and peaceful. a cat sitting on a window sill
looking at the city lights at night, cinematic, moody, neon glow, rain on the glass. an
astronaut riding a horse on the moon, surreal, high resolution, octane render, volumetric
light. a bowl of fresh fruit on a wooden table, still life, natural light from a window,
realistic textures, muted tones. a futuristic city with flying cars and tall glass towers,
science fiction, sunset sky, ultra wide shot, intricate details. a small red fox in a snowy
forest, wildlife photography, telephoto lens, soft background, winter morning. an ancient
castle on a hill above a river valley, fantasy art, epic scale, clouds and birds, matte
painting. a close up of a flower with dew drops, macro photography, bright colors, blurred
green background. a sailing ship in a storm at sea, giant waves, lightning, dark sky, oil on
canvas. a simple line drawing of a house with a garden and a tree, black and white, minimal
sketch. a bowl of ramen with steam rising, food photography, top view, warm light. the best
quality, masterpiece, beautiful, elegant, detailed face, perfect eyes, smooth skin, low
quality, blurry, bad anatomy, extra fingers, ugly, deformed, watermark, text, signature.`

// tokenizerMerges returns the BPE merges of the model's tokenizer: OpenAI's
// CLIP merges from bpePath, or ones learned from the built-in corpus.
func tokenizerMerges(bpePath string, learn int) ([]clip.Merge, error) {
	if bpePath == "" {
		return clip.LearnMerges(corpus, learn), nil
	}
	f, err := os.Open(bpePath)
	if err != nil {
		return nil, fmt.Errorf("clip bpe: %w", err)
	}
	defer f.Close()
	merges, err := clip.ReadBPE(f)
	if err != nil {
		return nil, fmt.Errorf("clip bpe %s: %w", bpePath, err)
	}
	return merges, nil
}

// vocabSize is the token embedding's row count: the largest id plus one
// (a merge that repeats a string leaves a hole, so the map may be shorter).
func vocabSize(merges []clip.Merge) int64 {
	largest := 0
	for _, id := range clip.VocabFromMerges(merges) {
		largest = max(largest, id)
	}
	return int64(largest) + 1
}
