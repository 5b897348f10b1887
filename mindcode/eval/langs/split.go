// The Go bridge (mindcode.eval.langs.go; Python's is mindcode.eval.sandbox.split): a sample and its test in two test
// binaries, so that the verdict is never the sample's to give. go.py puts this file's imports and body into both
// programs (the imports renamed, every name prefixed, so neither clashes with the sample's own). The candidate's
// program is the sample and a TestMain that serves calls of its entry point: `mindcodeSplitServe(Entry)`. The test
// program is the problem's text alone (trusted: its test setup, the prompt's helpers, the test) with Entry replaced by
// a proxy, `mindcodeSplitCall(Entry, &result, &arg1, &arg2, ...)`, compiled once per problem; its exit status is the
// verdict.
//
// Calls cross two pipes, fd 3 and 4 (each side reads on 3 and writes on 4), in
// frames of a 4-byte little-endian length and a payload. Values are encoded by their static type (both sides know
// the declaration's): booleans and numbers as 8 bytes, strings and slices as a count and their elements (slices and
// maps with a nil flag, so that []int{} and nil stay apart, as assert.Equal tells them apart), arrays element by
// element, interface values as their dynamic type's shape and then the value. Named types, structs, pointers,
// channels and functions do not cross. The candidate's first frame names its entry point's type; a type other than
// the declaration's is the candidate's failure, as is a malformed frame or a panic.
package main

import (
	mindcodeBinary "encoding/binary"
	mindcodeErrors "errors"
	mindcodeFmt "fmt"
	mindcodeIO "io"
	mindcodeMath "math"
	mindcodeOS "os"
	mindcodeReflect "reflect"
	mindcodeSync "sync"
)

const mindcodeSplitMaxFrame = 16 << 20
const mindcodeSplitMaxDepth = 64
const mindcodeSplitMaxValue = 1 << 30 // bytes of memory one decoded array or slice may take

var mindcodeSplitBasic = map[mindcodeReflect.Kind]mindcodeReflect.Type{}

func init() {
	for _, v := range []interface{}{false, int(0), int8(0), int16(0), int32(0), int64(0), uint(0), uint8(0),
		uint16(0), uint32(0), uint64(0), float32(0), float64(0), ""} {
		mindcodeSplitBasic[mindcodeReflect.TypeOf(v).Kind()] = mindcodeReflect.TypeOf(v)
	}
}

type mindcodeSplitWriter struct{ out []byte }

func (w *mindcodeSplitWriter) u64(n uint64) { w.out = mindcodeBinary.LittleEndian.AppendUint64(w.out, n) }

func (w *mindcodeSplitWriter) flag(on bool) {
	if on {
		w.out = append(w.out, 1)
	} else {
		w.out = append(w.out, 0)
	}
}

func (w *mindcodeSplitWriter) typ(t mindcodeReflect.Type, depth int) error {
	if depth > mindcodeSplitMaxDepth {
		return mindcodeErrors.New("a type nested too deeply")
	}
	if t.PkgPath() != "" || (t.Kind() == mindcodeReflect.Interface && t.NumMethod() > 0) {
		return mindcodeFmt.Errorf("cannot pass a value of type %s between the processes", t)
	}
	w.out = append(w.out, byte(t.Kind()))
	switch t.Kind() {
	case mindcodeReflect.Slice:
		return w.typ(t.Elem(), depth+1)
	case mindcodeReflect.Array:
		w.u64(uint64(t.Len()))
		return w.typ(t.Elem(), depth+1)
	case mindcodeReflect.Map:
		if err := w.typ(t.Key(), depth+1); err != nil {
			return err
		}
		return w.typ(t.Elem(), depth+1)
	case mindcodeReflect.Interface:
		return nil
	}
	if _, ok := mindcodeSplitBasic[t.Kind()]; !ok {
		return mindcodeFmt.Errorf("cannot pass a value of type %s between the processes", t)
	}
	return nil
}

func (w *mindcodeSplitWriter) value(v mindcodeReflect.Value, depth int) error {
	if depth > mindcodeSplitMaxDepth {
		return mindcodeErrors.New("a value nested too deeply")
	}
	if v.Type().PkgPath() != "" {
		return mindcodeFmt.Errorf("cannot pass a value of type %s between the processes", v.Type())
	}
	switch v.Kind() {
	case mindcodeReflect.Bool:
		w.flag(v.Bool())
	case mindcodeReflect.Int, mindcodeReflect.Int8, mindcodeReflect.Int16, mindcodeReflect.Int32, mindcodeReflect.Int64:
		w.u64(uint64(v.Int()))
	case mindcodeReflect.Uint, mindcodeReflect.Uint8, mindcodeReflect.Uint16, mindcodeReflect.Uint32,
		mindcodeReflect.Uint64:
		w.u64(v.Uint())
	case mindcodeReflect.Float32, mindcodeReflect.Float64:
		w.u64(mindcodeMath.Float64bits(v.Float()))
	case mindcodeReflect.String:
		w.u64(uint64(v.Len()))
		w.out = append(w.out, v.String()...)
	case mindcodeReflect.Slice, mindcodeReflect.Array:
		if v.Kind() == mindcodeReflect.Slice {
			w.flag(!v.IsNil())
			w.u64(uint64(v.Len()))
		}
		for i := 0; i < v.Len(); i++ {
			if err := w.value(v.Index(i), depth+1); err != nil {
				return err
			}
		}
	case mindcodeReflect.Map:
		w.flag(!v.IsNil())
		w.u64(uint64(v.Len()))
		for it := v.MapRange(); it.Next(); {
			if err := w.value(it.Key(), depth+1); err != nil {
				return err
			}
			if err := w.value(it.Value(), depth+1); err != nil {
				return err
			}
		}
	case mindcodeReflect.Interface:
		w.flag(!v.IsNil())
		if v.IsNil() {
			return nil
		}
		if err := w.typ(v.Elem().Type(), depth+1); err != nil {
			return err
		}
		return w.value(v.Elem(), depth+1)
	default:
		return mindcodeFmt.Errorf("cannot pass a value of type %s between the processes", v.Type())
	}
	return nil
}

type mindcodeSplitReader struct {
	in []byte
	at int
}

var mindcodeSplitShort = mindcodeErrors.New("the program broke the call protocol")

func (r *mindcodeSplitReader) bytes(n int) ([]byte, error) {
	if n < 0 || len(r.in)-r.at < n {
		return nil, mindcodeSplitShort
	}
	r.at += n
	return r.in[r.at-n : r.at], nil
}

func (r *mindcodeSplitReader) u64() (uint64, error) {
	b, err := r.bytes(8)
	if err != nil {
		return 0, err
	}
	return mindcodeBinary.LittleEndian.Uint64(b), nil
}

func (r *mindcodeSplitReader) flag() (bool, error) {
	b, err := r.bytes(1)
	if err != nil {
		return false, err
	}
	return b[0] != 0, nil
}

func (r *mindcodeSplitReader) count() (int, error) { // every element takes a byte: no count beyond the frame
	n, err := r.u64()
	if err == nil && n > uint64(len(r.in)-r.at) {
		return 0, mindcodeSplitShort
	}
	return int(n), err
}

func (r *mindcodeSplitReader) typ(depth int) (t mindcodeReflect.Type, err error) {
	b, err := r.bytes(1)
	if err != nil || depth > mindcodeSplitMaxDepth {
		return nil, mindcodeSplitShort
	}
	var elem, key mindcodeReflect.Type
	switch kind := mindcodeReflect.Kind(b[0]); kind {
	case mindcodeReflect.Slice:
		if elem, err = r.typ(depth + 1); err == nil {
			t = mindcodeReflect.SliceOf(elem)
		}
	case mindcodeReflect.Array:
		var n int
		if n, err = r.count(); err == nil {
			if elem, err = r.typ(depth + 1); err == nil {
				if elem.Size() == 0 || uint64(n)*uint64(elem.Size()) > mindcodeSplitMaxValue {
					return nil, mindcodeSplitShort // nothing to send, or more memory than a frame may ask for
				}
				t = mindcodeReflect.ArrayOf(n, elem)
			}
		}
	case mindcodeReflect.Map:
		if key, err = r.typ(depth + 1); err == nil {
			if elem, err = r.typ(depth + 1); err == nil {
				if !key.Comparable() {
					return nil, mindcodeSplitShort
				}
				t = mindcodeReflect.MapOf(key, elem)
			}
		}
	case mindcodeReflect.Interface:
		t = mindcodeReflect.TypeOf((*interface{})(nil)).Elem()
	default:
		if t = mindcodeSplitBasic[kind]; t == nil {
			return nil, mindcodeSplitShort
		}
	}
	return t, err
}

func (r *mindcodeSplitReader) value(v mindcodeReflect.Value, depth int) error {
	if depth > mindcodeSplitMaxDepth {
		return mindcodeSplitShort
	}
	switch v.Kind() {
	case mindcodeReflect.Bool:
		on, err := r.flag()
		v.SetBool(on)
		return err
	case mindcodeReflect.Int, mindcodeReflect.Int8, mindcodeReflect.Int16, mindcodeReflect.Int32, mindcodeReflect.Int64:
		n, err := r.u64()
		v.SetInt(int64(n))
		return err
	case mindcodeReflect.Uint, mindcodeReflect.Uint8, mindcodeReflect.Uint16, mindcodeReflect.Uint32,
		mindcodeReflect.Uint64:
		n, err := r.u64()
		v.SetUint(n)
		return err
	case mindcodeReflect.Float32, mindcodeReflect.Float64:
		n, err := r.u64()
		v.SetFloat(mindcodeMath.Float64frombits(n))
		return err
	case mindcodeReflect.String:
		n, err := r.count()
		if err != nil {
			return err
		}
		b, err := r.bytes(n)
		v.SetString(string(b))
		return err
	case mindcodeReflect.Array:
		for i := 0; i < v.Len(); i++ {
			if err := r.value(v.Index(i), depth+1); err != nil {
				return err
			}
		}
		return nil
	case mindcodeReflect.Slice, mindcodeReflect.Map:
		present, err := r.flag()
		if err != nil {
			return err
		}
		n, err := r.count()
		if err != nil || !present {
			return err
		}
		if v.Kind() == mindcodeReflect.Slice {
			if uint64(n)*uint64(v.Type().Elem().Size()) > mindcodeSplitMaxValue {
				return mindcodeSplitShort
			}
			v.Set(mindcodeReflect.MakeSlice(v.Type(), n, n))
			for i := 0; i < n; i++ {
				if err := r.value(v.Index(i), depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		v.Set(mindcodeReflect.MakeMapWithSize(v.Type(), n))
		for i := 0; i < n; i++ {
			key, elem := mindcodeReflect.New(v.Type().Key()).Elem(), mindcodeReflect.New(v.Type().Elem()).Elem()
			if err := r.value(key, depth+1); err != nil {
				return err
			}
			if err := r.value(elem, depth+1); err != nil {
				return err
			}
			v.SetMapIndex(key, elem)
		}
		return nil
	case mindcodeReflect.Interface:
		present, err := r.flag()
		if err != nil || !present {
			return err
		}
		t, err := r.typ(depth + 1)
		if err != nil {
			return err
		}
		inner := mindcodeReflect.New(t).Elem()
		if err := r.value(inner, depth+1); err != nil {
			return err
		}
		v.Set(inner)
		return nil
	}
	return mindcodeFmt.Errorf("cannot pass a value of type %s between the processes", v.Type())
}

func mindcodeSplitSend(to mindcodeIO.Writer, payload []byte) error {
	frame := mindcodeBinary.LittleEndian.AppendUint32(nil, uint32(len(payload)))
	_, err := to.Write(append(frame, payload...))
	return err
}

func mindcodeSplitReceive(from mindcodeIO.Reader) ([]byte, error) {
	var head [4]byte
	if _, err := mindcodeIO.ReadFull(from, head[:]); err != nil {
		return nil, err
	}
	n := mindcodeBinary.LittleEndian.Uint32(head[:])
	if n > mindcodeSplitMaxFrame {
		return nil, mindcodeErrors.New("a frame larger than the protocol's")
	}
	payload := make([]byte, n)
	_, err := mindcodeIO.ReadFull(from, payload)
	return payload, err
}

// The candidate's side: answer calls of f until the test closes the pipe.
func mindcodeSplitServe(f interface{}) {
	requests, replies := mindcodeOS.NewFile(3, "requests"), mindcodeOS.NewFile(4, "replies")
	fn := mindcodeReflect.ValueOf(f)
	if mindcodeSplitSend(replies, []byte("R"+fn.Type().String())) != nil {
		mindcodeOS.Exit(0)
	}
	for {
		frame, err := mindcodeSplitReceive(requests)
		if err != nil {
			mindcodeOS.Exit(0)
		}
		if mindcodeSplitSend(replies, mindcodeSplitAnswer(fn, frame)) != nil {
			mindcodeOS.Exit(0)
		}
	}
}

func mindcodeSplitAnswer(fn mindcodeReflect.Value, frame []byte) (reply []byte) {
	defer func() {
		if p := recover(); p != nil {
			reply = []byte(mindcodeFmt.Sprintf("Epanic: %v", p))
		}
	}()
	r := &mindcodeSplitReader{in: frame}
	args := make([]mindcodeReflect.Value, fn.Type().NumIn())
	for i := range args {
		args[i] = mindcodeReflect.New(fn.Type().In(i)).Elem()
		if err := r.value(args[i], 0); err != nil {
			return []byte("E" + err.Error())
		}
	}
	w := &mindcodeSplitWriter{out: []byte("V")}
	for _, out := range fn.Call(args) {
		if err := w.value(out, 0); err != nil {
			return []byte("E" + err.Error())
		}
	}
	return w.out
}

var mindcodeSplitReady = false
var mindcodeSplitCalling mindcodeSync.Mutex // one call at a time, whatever goroutines the test starts

// The test's ends of the pipes, opened once: an *os.File closes its descriptor when it is collected.
var mindcodeSplitRequests, mindcodeSplitReplies = mindcodeOS.NewFile(4, "requests"), mindcodeOS.NewFile(3, "replies")

// The test's side: one call of the candidate's entry point (declared like f); the result lands in *result.
func mindcodeSplitCall(f interface{}, result interface{}, args ...interface{}) {
	mindcodeSplitCalling.Lock()
	defer mindcodeSplitCalling.Unlock()
	requests, replies := mindcodeSplitRequests, mindcodeSplitReplies
	if !mindcodeSplitReady {
		frame, err := mindcodeSplitReceive(replies)
		if err != nil {
			panic("the program ended before the test could call it")
		}
		if want := "R" + mindcodeReflect.TypeOf(f).String(); string(frame) != want {
			panic("the program's entry point has another type than the declaration's: " + string(frame[1:]))
		}
		mindcodeSplitReady = true
	}
	w := &mindcodeSplitWriter{}
	for _, arg := range args {
		if err := w.value(mindcodeReflect.ValueOf(arg).Elem(), 0); err != nil {
			panic(err)
		}
	}
	if mindcodeSplitSend(requests, w.out) != nil {
		panic("the program ended while the test was calling it")
	}
	frame, err := mindcodeSplitReceive(replies)
	if err != nil {
		panic("the program ended while the test was calling it")
	}
	if len(frame) > 0 && frame[0] == 'E' {
		if len(frame) > 4001 {
			frame = frame[:4001]
		}
		panic(string(frame[1:]))
	}
	r := &mindcodeSplitReader{in: frame, at: 1}
	if len(frame) == 0 || frame[0] != 'V' || r.value(mindcodeReflect.ValueOf(result).Elem(), 0) != nil ||
		r.at != len(frame) {
		panic(mindcodeSplitShort)
	}
}
