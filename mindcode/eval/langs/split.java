// The Java bridge (mindcode.eval.langs.java; Python's is mindcode.eval.sandbox.split): a sample and its test in two
// JVMs, so that the verdict is never the sample's to give. java.py appends this class to both programs. The candidate's
// Main is generated from the declaration: `MindcodeSplit.serve(a -> s.entry((T1) a[0], (T2) a[1]))`, so the compiler
// picks the method the test would call. The test program is the problem's text alone (trusted: the prompt's class up to
// the entry point, a proxy `return (R) MindcodeSplit.call(x, y);`, the test's Main), compiled once per problem; its
// exit status is the verdict. Both JVMs run with `--add-opens java.base/java.io=ALL-UNNAMED` to reach fds 3 and 4.
//
// Calls cross two pipes, fd 3 and 4 (each side reads on 3 and writes on 4), in
// frames of a 4-byte big-endian length and a payload. Values are tagged by their class: null, Boolean, the boxed
// numbers, Character, String (interned: tests compare strings with ==), List (as ArrayList), Set (LinkedHashSet),
// Map (LinkedHashMap), Optional, and arrays of int, long, double, boolean, char and String; anything else, or a
// malformed frame, is the candidate's failure, as is an exception it throws.
final class MindcodeSplit {
    interface Entry {
        Object apply(Object[] a) throws Throwable;
    }

    static final int MAX_FRAME = 16 << 20;
    static final int MAX_DEPTH = 64;
    static java.io.DataInputStream in;
    static java.io.DataOutputStream out;
    static boolean ready = false;

    static void open(int read, int write) throws Exception {
        java.lang.reflect.Field fd = java.io.FileDescriptor.class.getDeclaredField("fd");
        fd.setAccessible(true);
        java.io.FileDescriptor r = new java.io.FileDescriptor(), w = new java.io.FileDescriptor();
        fd.setInt(r, read);
        fd.setInt(w, write);
        in = new java.io.DataInputStream(new java.io.BufferedInputStream(new java.io.FileInputStream(r)));
        out = new java.io.DataOutputStream(new java.io.FileOutputStream(w));
    }

    static void send(byte[] payload) throws java.io.IOException {
        java.io.ByteArrayOutputStream frame = new java.io.ByteArrayOutputStream();
        new java.io.DataOutputStream(frame).writeInt(payload.length);
        frame.write(payload);
        out.write(frame.toByteArray());
        out.flush();
    }

    static byte[] receive() throws java.io.IOException {
        int n = in.readInt();
        if (n < 0 || n > MAX_FRAME) throw new java.io.IOException("a frame larger than the protocol's");
        byte[] payload = new byte[n];
        in.readFully(payload);
        return payload;
    }

    static void put(java.io.DataOutputStream w, Object v, int depth) throws java.io.IOException {
        if (depth > MAX_DEPTH) throw new IllegalArgumentException("a value nested too deeply");
        if (v == null) { w.writeByte('N'); }
        else if (v instanceof Boolean) { w.writeByte('Z'); w.writeBoolean((Boolean) v); }
        else if (v instanceof Integer) { w.writeByte('I'); w.writeInt((Integer) v); }
        else if (v instanceof Long) { w.writeByte('J'); w.writeLong((Long) v); }
        else if (v instanceof Double) { w.writeByte('D'); w.writeDouble((Double) v); }
        else if (v instanceof Float) { w.writeByte('F'); w.writeFloat((Float) v); }
        else if (v instanceof Short) { w.writeByte('S'); w.writeShort((Short) v); }
        else if (v instanceof Byte) { w.writeByte('B'); w.writeByte((Byte) v); }
        else if (v instanceof Character) { w.writeByte('C'); w.writeChar((Character) v); }
        else if (v instanceof String) { String s = (String) v; w.writeByte('T'); w.writeInt(s.length()); w.writeChars(s); }
        else if (v instanceof java.util.Optional) {
            java.util.Optional<?> o = (java.util.Optional<?>) v;
            w.writeByte('O');
            w.writeBoolean(o.isPresent());
            if (o.isPresent()) put(w, o.get(), depth + 1);
        } else if (v instanceof java.util.Map) {
            java.util.Map<?, ?> m = (java.util.Map<?, ?>) v;
            w.writeByte('M');
            w.writeInt(m.size());
            for (java.util.Map.Entry<?, ?> e : m.entrySet()) { put(w, e.getKey(), depth + 1); put(w, e.getValue(), depth + 1); }
        } else if (v instanceof java.util.Collection) {
            java.util.Collection<?> c = (java.util.Collection<?>) v;
            w.writeByte(v instanceof java.util.Set ? 'E' : 'L');
            w.writeInt(c.size());
            for (Object x : c) put(w, x, depth + 1);
        } else if (v instanceof int[]) { int[] a = (int[]) v; w.writeByte('i'); w.writeInt(a.length); for (int x : a) w.writeInt(x); }
        else if (v instanceof long[]) { long[] a = (long[]) v; w.writeByte('j'); w.writeInt(a.length); for (long x : a) w.writeLong(x); }
        else if (v instanceof double[]) { double[] a = (double[]) v; w.writeByte('d'); w.writeInt(a.length); for (double x : a) w.writeDouble(x); }
        else if (v instanceof boolean[]) { boolean[] a = (boolean[]) v; w.writeByte('z'); w.writeInt(a.length); for (boolean x : a) w.writeBoolean(x); }
        else if (v instanceof char[]) { char[] a = (char[]) v; w.writeByte('c'); w.writeInt(a.length); for (char x : a) w.writeChar(x); }
        else if (v instanceof String[]) { String[] a = (String[]) v; w.writeByte('t'); w.writeInt(a.length); for (String x : a) put(w, x, depth + 1); }
        else throw new IllegalArgumentException("cannot pass a value of type " + v.getClass().getName() + " between the processes");
    }

    static int count(java.io.DataInputStream r) throws java.io.IOException {
        int n = r.readInt();  // every element takes a byte: no count beyond the frame
        if (n < 0 || n > r.available()) throw new java.io.IOException("the program broke the call protocol");
        return n;
    }

    static Object get(java.io.DataInputStream r, int depth) throws java.io.IOException {
        if (depth > MAX_DEPTH) throw new java.io.IOException("the program broke the call protocol");
        int tag = r.readUnsignedByte();
        switch (tag) {
            case 'N': return null;
            case 'Z': return r.readBoolean();
            case 'I': return r.readInt();
            case 'J': return r.readLong();
            case 'D': return r.readDouble();
            case 'F': return r.readFloat();
            case 'S': return r.readShort();
            case 'B': return r.readByte();
            case 'C': return r.readChar();
            case 'T': {
                char[] s = new char[count(r)];
                for (int i = 0; i < s.length; i++) s[i] = r.readChar();
                return new String(s).intern();  // as in one JVM, a string equal to a literal is that literal
            }
            case 'O': return r.readBoolean() ? java.util.Optional.ofNullable(get(r, depth + 1)) : java.util.Optional.empty();
            case 'M': {
                java.util.Map<Object, Object> m = new java.util.LinkedHashMap<>();
                for (int n = count(r); n > 0; n--) m.put(get(r, depth + 1), get(r, depth + 1));
                return m;
            }
            case 'L': case 'E': {
                java.util.Collection<Object> c = tag == 'L' ? new java.util.ArrayList<>() : new java.util.LinkedHashSet<>();
                for (int n = count(r); n > 0; n--) c.add(get(r, depth + 1));
                return c;
            }
            case 'i': { int[] a = new int[count(r)]; for (int i = 0; i < a.length; i++) a[i] = r.readInt(); return a; }
            case 'j': { long[] a = new long[count(r)]; for (int i = 0; i < a.length; i++) a[i] = r.readLong(); return a; }
            case 'd': { double[] a = new double[count(r)]; for (int i = 0; i < a.length; i++) a[i] = r.readDouble(); return a; }
            case 'z': { boolean[] a = new boolean[count(r)]; for (int i = 0; i < a.length; i++) a[i] = r.readBoolean(); return a; }
            case 'c': { char[] a = new char[count(r)]; for (int i = 0; i < a.length; i++) a[i] = r.readChar(); return a; }
            case 't': {
                String[] a = new String[count(r)];
                for (int i = 0; i < a.length; i++) {
                    Object x = get(r, depth + 1);
                    if (x != null && !(x instanceof String)) throw new java.io.IOException("the program broke the call protocol");
                    a[i] = (String) x;
                }
                return a;
            }
            default: throw new java.io.IOException("the program broke the call protocol");
        }
    }

    static byte[] encode(String kind, Object v) throws java.io.IOException {
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        java.io.DataOutputStream w = new java.io.DataOutputStream(bytes);
        w.writeBytes(kind);
        put(w, v, 0);
        return bytes.toByteArray();
    }

    // The candidate's side: answer calls of the entry point until the test closes the pipe.
    static void serve(Entry entry) throws Exception {
        open(3, 4);
        send(new byte[] {'R'});
        while (true) {
            byte[] frame;
            try {
                frame = receive();
            } catch (java.io.IOException e) {
                System.exit(0);
                return;
            }
            byte[] reply;
            try {
                Object args = get(new java.io.DataInputStream(new java.io.ByteArrayInputStream(frame)), 0);
                if (!(args instanceof java.util.List)) throw new java.io.IOException("the test broke the call protocol");
                reply = encode("V", entry.apply(((java.util.List<?>) args).toArray()));
            } catch (Throwable e) {
                String message = String.valueOf(e);
                reply = ("E" + message.substring(0, Math.min(message.length(), 4000))).getBytes("UTF-8");
            }
            send(reply);
        }
    }

    // The test's side: one call of the candidate's entry point.
    static synchronized Object call(Object[] args) {
        try {
            if (!ready) {
                open(3, 4);
                byte[] hello = receive();
                if (hello.length != 1 || hello[0] != 'R') throw new java.io.IOException("not the protocol's first frame");
                ready = true;
            }
            send(encode("", java.util.Arrays.asList(args)));
            byte[] reply = receive();
            if (reply.length > 0 && reply[0] == 'E') throw new RuntimeException(new String(reply, 1, reply.length - 1, "UTF-8"));
            java.io.DataInputStream r = new java.io.DataInputStream(new java.io.ByteArrayInputStream(reply));
            if (reply.length == 0 || r.readUnsignedByte() != 'V') throw new java.io.IOException("not a reply");
            Object result = get(r, 0);
            if (r.available() != 0) throw new java.io.IOException("a reply longer than its value");
            return result;
        } catch (java.io.IOException e) {
            throw new RuntimeException("the program broke the call protocol or ended: " + e.getMessage());
        } catch (Exception e) {
            throw e instanceof RuntimeException ? (RuntimeException) e : new RuntimeException(e);
        }
    }
}
