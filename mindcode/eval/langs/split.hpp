// The C++ bridge (mindcode.eval.langs.cpp; Python's is mindcode.eval.sandbox.split): a sample and its test in two
// programs, so that the verdict is never the sample's to give. Included after the candidate's code, whose main()
// becomes `return mindcode_split::serve(ENTRY);` (it answers calls of its entry point), and after the problem's own
// prompt helpers in the test program, whose ENTRY is a proxy: `return mindcode_split::call<R>(args...);`. The test
// program is compiled from the problem's text alone (trusted), so the candidate's macros, globals and exit() never
// reach it; its exit status is the verdict.
//
// Calls cross two pipes, fd 3 and 4 (each side reads on 3 and writes on 4), in
// frames of a 4-byte length and a payload. Values are encoded by type (both programs use this file, so both sides
// agree on every layout): arithmetic types as their bytes, strings and containers as a count and their elements,
// pairs and tuples element by element. A type without a codec does not compile: that problem's test then runs
// inside the program, bigcode's way, and the summary says so. The candidate's first frame names its entry point's
// type; a signature other than the declaration's is the candidate's failure, as is a malformed frame.
#ifndef MINDCODE_SPLIT_HPP
#define MINDCODE_SPLIT_HPP
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <list>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace mindcode_split {

constexpr std::uint32_t MAX_FRAME = 16u << 20;

struct Writer {
  std::string out;
  void bytes(const void* data, std::size_t size) { out.append(static_cast<const char*>(data), size); }
};

struct Reader {
  const std::string& in;
  std::size_t at;
  void bytes(void* data, std::size_t size) {
    if (in.size() - at < size) throw std::runtime_error("a frame shorter than its value");
    std::memcpy(data, in.data() + at, size);
    at += size;
  }
  std::uint64_t count() {
    std::uint64_t n;
    bytes(&n, sizeof n);
    if (n > in.size() - at) throw std::runtime_error("a count larger than its frame");  // every element takes a byte
    return n;
  }
};

template <class T, class Enable = void>
struct codec;  // no codec: the bridge cannot pass the type

template <class T>
void put(Writer& w, const T& v) { codec<T>::put(w, v); }

template <class T>
void get(Reader& r, T& v) { codec<T>::get(r, v); }

template <class T>
struct codec<T, typename std::enable_if<std::is_arithmetic<T>::value && !std::is_same<T, bool>::value>::type> {
  static void put(Writer& w, const T& v) { w.bytes(&v, sizeof v); }
  static void get(Reader& r, T& v) { r.bytes(&v, sizeof v); }
};

template <>
struct codec<bool> {
  static void put(Writer& w, const bool& v) { std::uint8_t b = v; w.bytes(&b, 1); }
  static void get(Reader& r, bool& v) { std::uint8_t b; r.bytes(&b, 1); v = b != 0; }
};

template <>
struct codec<std::string> {
  static void put(Writer& w, const std::string& v) {
    std::uint64_t n = v.size();
    w.bytes(&n, sizeof n);
    w.bytes(v.data(), v.size());
  }
  static void get(Reader& r, std::string& v) {
    std::uint64_t n = r.count();
    v.assign(r.in.data() + r.at, n);
    r.at += n;
  }
};

template <class C>
struct sequence {  // vector, list, deque; sets (inserted)
  static void put(Writer& w, const C& v) {
    std::uint64_t n = v.size();
    w.bytes(&n, sizeof n);
    for (const auto& x : v) mindcode_split::put<typename C::value_type>(w, x);
  }
  static void get(Reader& r, C& v) {
    v.clear();
    for (std::uint64_t n = r.count(); n > 0; --n) {
      typename C::value_type x{};
      mindcode_split::get(r, x);
      v.insert(v.end(), std::move(x));
    }
  }
};

template <class T, class A> struct codec<std::vector<T, A>> : sequence<std::vector<T, A>> {};
template <class T, class A> struct codec<std::list<T, A>> : sequence<std::list<T, A>> {};
template <class T, class A> struct codec<std::deque<T, A>> : sequence<std::deque<T, A>> {};
template <class T, class C, class A> struct codec<std::set<T, C, A>> : sequence<std::set<T, C, A>> {};
template <class T, class C, class A> struct codec<std::multiset<T, C, A>> : sequence<std::multiset<T, C, A>> {};
template <class T, class H, class E, class A>
struct codec<std::unordered_set<T, H, E, A>> : sequence<std::unordered_set<T, H, E, A>> {};

template <class M>
struct mapping {  // map, unordered_map
  static void put(Writer& w, const M& v) {
    std::uint64_t n = v.size();
    w.bytes(&n, sizeof n);
    for (const auto& kv : v) {
      mindcode_split::put(w, kv.first);
      mindcode_split::put(w, kv.second);
    }
  }
  static void get(Reader& r, M& v) {
    v.clear();
    for (std::uint64_t n = r.count(); n > 0; --n) {
      typename M::key_type k{};
      typename M::mapped_type x{};
      mindcode_split::get(r, k);
      mindcode_split::get(r, x);
      v.emplace(std::move(k), std::move(x));
    }
  }
};

template <class K, class V, class C, class A> struct codec<std::map<K, V, C, A>> : mapping<std::map<K, V, C, A>> {};
template <class K, class V, class H, class E, class A>
struct codec<std::unordered_map<K, V, H, E, A>> : mapping<std::unordered_map<K, V, H, E, A>> {};

template <class A, class B>
struct codec<std::pair<A, B>> {
  static void put(Writer& w, const std::pair<A, B>& v) { mindcode_split::put(w, v.first); mindcode_split::put(w, v.second); }
  static void get(Reader& r, std::pair<A, B>& v) { mindcode_split::get(r, v.first); mindcode_split::get(r, v.second); }
};

template <class... T>
struct codec<std::tuple<T...>> {
  static void put(Writer& w, const std::tuple<T...>& v) {
    std::apply([&w](const T&... x) { (mindcode_split::put(w, x), ...); }, v);
  }
  static void get(Reader& r, std::tuple<T...>& v) {
    std::apply([&r](T&... x) { (mindcode_split::get(r, x), ...); }, v);
  }
};

inline bool read_all(int fd, void* data, std::size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t got = ::read(fd, p, size);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    p += got;
    size -= static_cast<std::size_t>(got);
  }
  return true;
}

inline bool write_all(int fd, const std::string& data) {
  const char* p = data.data();
  std::size_t size = data.size();
  while (size > 0) {
    ssize_t done = ::write(fd, p, size);
    if (done < 0 && errno == EINTR) continue;
    if (done <= 0) return false;
    p += done;
    size -= static_cast<std::size_t>(done);
  }
  return true;
}

inline bool send(int fd, const std::string& payload) {
  std::uint32_t n = static_cast<std::uint32_t>(payload.size());
  std::string frame(reinterpret_cast<const char*>(&n), sizeof n);
  return write_all(fd, frame + payload);
}

inline bool receive(int fd, std::string& payload) {
  std::uint32_t n;
  if (!read_all(fd, &n, sizeof n)) return false;
  if (n > MAX_FRAME) throw std::runtime_error("a frame larger than the protocol's");
  payload.resize(n);
  return read_all(fd, &payload[0], n);
}

template <class R, class... A>
const char* signature() { return typeid(R (*)(typename std::decay<A>::type...)).name(); }

// The candidate's side: answer calls of f until the test closes the pipe.
template <class R, class... A>
int serve(R (*f)(A...)) {
  const int requests = 3, replies = 4;
  if (!send(replies, std::string("R") + signature<R, A...>())) return 0;
  std::string frame;
  while (receive(requests, frame)) {
    Writer w;
    try {
      std::tuple<typename std::decay<A>::type...> args;
      Reader r{frame, 0};
      mindcode_split::get(r, args);
      R result = std::apply(f, args);
      w.out = "V";
      mindcode_split::put(w, result);
    } catch (const std::exception& e) {
      w.out = std::string("E") + e.what();
    } catch (...) {
      w.out = "Ean exception that is not a std::exception";
    }
    if (!send(replies, w.out)) return 0;
  }
  return 0;
}

// The test's side: one call of the candidate's entry point.
template <class R, class... A>
R call(const A&... args) {
  const int requests = 4, replies = 3;
  static bool ready = false;
  std::string frame;
  if (!ready) {
    if (!receive(replies, frame)) throw std::runtime_error("the program ended before the test could call it");
    if (frame.empty() || frame[0] != 'R') throw std::runtime_error("the program broke the call protocol");
    if (frame.substr(1) != signature<R, A...>())
      throw std::runtime_error("the program's entry point has another signature than the declaration's");
    ready = true;
  }
  Writer w;
  (mindcode_split::put(w, args), ...);
  if (!send(requests, w.out) || !receive(replies, frame))
    throw std::runtime_error("the program ended while the test was calling it");
  if (!frame.empty() && frame[0] == 'E') throw std::runtime_error(frame.substr(1, 4000));
  if (frame.empty() || frame[0] != 'V') throw std::runtime_error("the program broke the call protocol");
  R result{};
  Reader r{frame, 1};
  mindcode_split::get(r, result);
  if (r.at != frame.size()) throw std::runtime_error("the program broke the call protocol");
  return result;
}

}  // namespace mindcode_split
#endif
