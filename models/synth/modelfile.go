package synth

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

const (
	modelFile    = "model.onnx"
	dataFile     = modelFile + externalSuffix
	writeBufSize = 1 << 20
)

// Network reports one network written to the model folder.
type Network struct {
	Name   string // folder: text_encoder, unet, vae_decoder, vae_encoder
	Params int64  // trained parameters, as torch counts them
	// ExternalData: the weights are in model.onnx_data. Set when asked for,
	// and always when the network would pass protobuf's 2 GiB limit.
	ExternalData bool
}

// writeNetwork writes g as dir/model.onnx, with its weights inline or, when
// external is set or the file would be too big, in dir/model.onnx_data.
func writeNetwork(ctx context.Context, dir string, g *graph, doc string, external bool) (Network, error) {
	m := &model{doc: doc, graph: g}
	if !external && m.size() > protobufLimit {
		external = true
	}
	res := Network{Name: g.name, Params: g.paramCount(), ExternalData: external}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, err
	}
	if external {
		params := placeExternal(g)
		err := writeStream(filepath.Join(dir, dataFile), func(ww *wireWriter) {
			for _, t := range params {
				if err := ctx.Err(); err != nil {
					ww.fail(err)
					return
				}
				t.writeData(ww)
			}
		})
		if err != nil {
			return res, err
		}
	}
	if size := m.size(); size > protobufLimit {
		return res, fmt.Errorf("%s: %w (%d bytes)", g.name, ErrTooLarge, size)
	}
	err := writeStream(filepath.Join(dir, modelFile), func(ww *wireWriter) { m.emit(ctx, ww) })
	return res, err
}

// placeExternal moves every parameter's data to model.onnx_data, back to
// back in graph order, and returns those tensors in that order.
func placeExternal(g *graph) []*tensor {
	var params []*tensor
	var offset int64
	for _, t := range g.inits {
		if !t.isParam() {
			continue // constants are tiny and stay inline, as exporters do
		}
		t.ext = &externalRef{location: dataFile, offset: offset, bytes: t.dataBytes()}
		offset += t.dataBytes()
		params = append(params, t)
	}
	return params
}

// writeStream creates path and streams fill's output into it through a
// buffer; nothing but one chunk of weights is ever held in memory.
func writeStream(path string, fill func(ww *wireWriter)) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, writeBufSize)
	ww := newWireWriter(bw)
	fill(ww)
	if ww.err != nil {
		if errors.Is(ww.err, context.Canceled) || errors.Is(ww.err, context.DeadlineExceeded) {
			return ww.err
		}
		return fmt.Errorf("write %s: %w", filepath.Base(path), ww.err)
	}
	return bw.Flush()
}
