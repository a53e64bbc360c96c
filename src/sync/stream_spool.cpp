#include "sync/stream_spool.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <system_error>

#include "common/byte_reader.h"
#include "pgseed/error.h"
#include "store/store.h"

namespace pgseed {

// File format: one record per message, a 4-byte length (host byte order: the file never
// leaves this process) then the message as the server sent it, stream xid included.

namespace {
constexpr size_t kWriteBuffer = size_t(256) << 10;
constexpr size_t kReadBuffer = size_t(1) << 20;

[[noreturn]] void io_failed(const std::string& what, const std::filesystem::path& path, int err) {
  throw Error(ErrorCategory::kStore, "stream spool: " + what + " " + path.string() + ": " +
                                         std::strerror(err));
}

[[noreturn]] void protocol(const std::string& message) {
  throw Error(ErrorCategory::kDecode, "pgoutput stream: " + message);
}

// The message's stream xid (Relation, Type, Insert, Update, Delete, Truncate, Message carry
// one inside a segment); none for an Origin message. Throws Error(kDecode) for anything
// else, and for an invalid xid (0).
std::optional<uint32_t> stream_xid_of(std::span<const uint8_t> message) {
  ByteReader r(message, "pgoutput stream");
  uint8_t type = r.read_u8("message type");
  switch (type) {
    case 'R': case 'Y': case 'I': case 'U': case 'D': case 'T': case 'M':
      if (uint32_t xid = r.read_u32("xid"); xid != 0) return xid;
      protocol("a change without its transaction's xid inside a stream segment");
    case 'O':
      return std::nullopt;
    default:
      protocol("message type " + std::to_string(type) + " inside a stream segment");
  }
}

// Reads the records of one file in order.
class RecordReader {
 public:
  RecordReader(const std::filesystem::path& path, uint64_t from) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) io_failed("cannot open", path, errno);
    if (lseek(fd_, off_t(from), SEEK_SET) < 0) io_failed("cannot seek in", path, errno);
    buf_.resize(kReadBuffer);
  }
  ~RecordReader() { ::close(fd_); }
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // The next record (valid until the next call), or false at the end of the file.
  bool next(std::span<const uint8_t>& record) {
    uint32_t len = 0;
    if (!ensure(sizeof len)) return false;
    std::memcpy(&len, buf_.data() + pos_, sizeof len);
    pos_ += sizeof len;
    if (len == 0 || !ensure(len)) {
      throw Error(ErrorCategory::kStore, "stream spool: " + path_.string() + " ends inside a message");
    }
    record = {buf_.data() + pos_, len};
    pos_ += len;
    return true;
  }

 private:
  // At least n bytes buffered from pos_ (false: the file ended first, with none buffered
  // when n is a length's size).
  bool ensure(size_t n) {
    if (end_ - pos_ >= n) return true;
    std::memmove(buf_.data(), buf_.data() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
    if (buf_.size() < n) buf_.resize(n);
    while (end_ < n) {
      ssize_t got = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) io_failed("cannot read", path_, errno);
      if (got == 0) {
        if (end_ == 0) return false;
        throw Error(ErrorCategory::kStore, "stream spool: " + path_.string() + " ends inside a message");
      }
      end_ += size_t(got);
    }
    return true;
  }

  std::filesystem::path path_;
  int fd_ = -1;
  std::vector<uint8_t> buf_;
  size_t pos_ = 0, end_ = 0;
};
}  // namespace

std::filesystem::path StreamSpool::dir_for(const std::string& store_uri) {
  return StoreUri::parse(store_uri).path + ".stream-spool";
}

StreamSpool::~StreamSpool() {
  drop_file();
  std::error_code ec;
  if (dir_made_ || std::filesystem::exists(dir_, ec)) std::filesystem::remove_all(dir_, ec);
}

void StreamSpool::reset() {
  drop_file();
  txns_.clear();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
  if (ec) io_failed("cannot remove", dir_, ec.value());
  dir_made_ = false;
}

uint64_t StreamSpool::size_of(uint32_t xid) const {
  auto it = txns_.find(xid);
  return it == txns_.end() ? 0 : it->second.size;
}

void StreamSpool::begin_segment(uint32_t xid, bool first_segment) {
  if (open_) protocol("stream start of transaction " + std::to_string(xid) + " inside a segment of " +
                      std::to_string(open_xid_));
  auto it = txns_.find(xid);
  if (it == txns_.end() && !first_segment)
    protocol("a later segment of transaction " + std::to_string(xid) +
             ", whose first segment was not received");
  if (!dir_made_) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) io_failed("cannot create", dir_, ec.value());
    dir_made_ = true;
  }
  if (it != txns_.end() && first_segment) {  // sent again from its start: begin anew
    forget(xid);
    it = txns_.end();
  }
  if (it == txns_.end()) {
    it = txns_.emplace(xid, Txn{}).first;
    it->second.path = dir_ / (std::to_string(xid) + ".changes");
  }
  Txn& t = it->second;
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (first_segment ? O_TRUNC : 0);
  fd_ = ::open(t.path.c_str(), flags, 0600);
  if (fd_ < 0) io_failed("cannot open", t.path, errno);
  open_ = &t;
  open_xid_ = xid;
  flushed_ = t.size;
  t.last_subxid = 0;
  buffer_.reserve(kWriteBuffer);
}

void StreamSpool::append(std::span<const uint8_t> message) {
  if (!open_) protocol("a change outside a stream segment");
  std::optional<uint32_t> sub = stream_xid_of(message);
  if (!sub) return;  // Origin
  uint32_t xid = *sub;
  Txn& t = *open_;
  // worker.c's subxact_info_add: a subtransaction's first change marks where its part of
  // the file begins.
  if (xid != open_xid_ && xid != t.last_subxid) {
    t.last_subxid = xid;
    bool known = false;
    for (auto s = t.subxacts.rbegin(); s != t.subxacts.rend() && !known; ++s) known = s->xid == xid;
    if (!known) t.subxacts.push_back({xid, t.size});
  }
  uint32_t len = uint32_t(message.size());
  write(&len, sizeof len);
  write(message.data(), message.size());
}

void StreamSpool::end_segment() {
  if (!open_) protocol("stream stop outside a stream segment");
  close_file();
}

void StreamSpool::abort(uint32_t xid, uint32_t subxid) {
  if (open_) protocol("stream abort inside a stream segment");
  auto it = txns_.find(xid);
  if (it == txns_.end()) return;
  if (subxid == xid) {
    forget(xid);
    return;
  }
  Txn& t = it->second;
  t.last_subxid = 0;
  size_t idx = t.subxacts.size();
  for (size_t i = t.subxacts.size(); i > 0; --i)
    if (t.subxacts[i - 1].xid == subxid) {
      idx = i - 1;
      break;
    }
  if (idx == t.subxacts.size()) return;  // no change of it was streamed
  uint64_t cut = t.subxacts[idx].offset;
  t.subxacts.resize(idx);
  // The relation and type descriptions in the part cut off are kept, in order.
  std::vector<std::vector<uint8_t>> keep;
  {
    RecordReader r(t.path, cut);
    std::span<const uint8_t> m;
    while (r.next(m))
      if (m[0] == 'R' || m[0] == 'Y') keep.emplace_back(m.begin(), m.end());
  }
  if (::truncate(t.path.c_str(), off_t(cut)) != 0) io_failed("cannot truncate", t.path, errno);
  t.size = cut;
  if (keep.empty()) return;
  fd_ = ::open(t.path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd_ < 0) io_failed("cannot open", t.path, errno);
  open_ = &t;
  open_xid_ = xid;
  flushed_ = t.size;
  for (const auto& m : keep) {
    uint32_t len = uint32_t(m.size());
    write(&len, sizeof len);
    write(m.data(), m.size());
  }
  close_file();
}

void StreamSpool::replay(uint32_t xid, const std::function<void(std::span<const uint8_t>)>& fn) {
  if (open_) protocol("stream commit inside a stream segment");
  auto it = txns_.find(xid);
  if (it == txns_.end())
    protocol("stream commit of transaction " + std::to_string(xid) + ", of which no segment was received");
  struct Forget {
    StreamSpool& s;
    uint32_t xid;
    ~Forget() { s.forget(xid); }
  } forget_after{*this, xid};
  if (it->second.size == 0) return;
  RecordReader r(it->second.path, 0);
  std::span<const uint8_t> m;
  while (r.next(m)) fn(m);
}

void StreamSpool::forget(uint32_t xid) {
  auto it = txns_.find(xid);
  if (it == txns_.end()) return;
  if (open_ == &it->second) drop_file();
  std::error_code ec;
  std::filesystem::remove(it->second.path, ec);  // a leftover goes with the directory
  txns_.erase(it);
}

void StreamSpool::write(const void* data, size_t n) {
  const auto* p = static_cast<const uint8_t*>(data);
  if (buffer_.size() + n > kWriteBuffer) flush();
  if (n > kWriteBuffer) {
    write_through(p, n);  // a large message goes straight to the file
  } else {
    buffer_.insert(buffer_.end(), p, p + n);
  }
  open_->size += n;
}

void StreamSpool::flush() {
  write_through(buffer_.data(), buffer_.size());
  buffer_.clear();
}

void StreamSpool::write_through(const uint8_t* p, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t w = ::pwrite(fd_, p + done, n - done, off_t(flushed_ + done));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) io_failed("cannot write", open_->path, errno);
    done += size_t(w);
  }
  flushed_ += n;
}

void StreamSpool::close_file() {
  if (fd_ < 0) {
    open_ = nullptr;
    return;
  }
  std::exception_ptr failed;
  if (open_) {
    try {
      flush();
    } catch (...) {
      failed = std::current_exception();
    }
  }
  ::close(fd_);
  fd_ = -1;
  open_ = nullptr;
  buffer_.clear();
  if (failed) std::rethrow_exception(failed);
}

void StreamSpool::drop_file() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  open_ = nullptr;
  buffer_.clear();
}

}  // namespace pgseed
