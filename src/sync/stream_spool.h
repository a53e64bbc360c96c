// StreamSpool: the in-progress transactions the server streams (pgoutput protocol version
// 2, streaming 'on'), held on disk until they commit or abort. One file per top-level
// transaction, holding the raw pgoutput messages of its segments in the order received;
// memory use is bounded by one write buffer and the largest single message.
//
// PostgreSQL's apply worker (worker.c, stream_write_change / stream_abort_internal) is the
// model: per subtransaction, the file offset of its first change is remembered, and a
// subtransaction's abort truncates the file there (everything after a subtransaction's
// first change belongs to it or to its children).
//
// The spool is never a source of truth: nothing in it is durable, a new session starts
// from an empty one, and the server sends a transaction again, whole, when it commits
// after the slot's confirmed position.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

namespace pgseed {

class StreamSpool {
 public:
  // Spools into `dir`, which is created when the first segment arrives. Nothing is read
  // or written before.
  explicit StreamSpool(std::filesystem::path dir) : dir_(std::move(dir)) {}
  // Removes the directory and everything in it (never throws).
  ~StreamSpool();
  StreamSpool(const StreamSpool&) = delete;
  StreamSpool& operator=(const StreamSpool&) = delete;

  // Forgets every transaction and removes the directory, also what a process killed
  // earlier left there. Throws Error(kStore) when it cannot be removed.
  void reset();

  // StreamStart: the messages up to end_segment() belong to top-level transaction `xid`.
  // Throws Error(kDecode) inside a segment, and for a later segment of a transaction
  // whose first segment this spool did not see; Error(kStore) on an I/O failure.
  void begin_segment(uint32_t xid, bool first_segment);
  // A message of the open segment (a pgoutput message with its stream xid: Relation, Type,
  // Insert, Update, Delete, Truncate, Message); an Origin message is not stored (it says
  // nothing to apply). Throws Error(kDecode) outside a segment or for another message
  // type, Error(kStore) on an I/O failure (disk full: the spool's directory is named).
  void append(std::span<const uint8_t> message);
  // StreamStop: the segment's messages are written to the file.
  void end_segment();
  bool in_segment() const { return open_ != nullptr; }

  // StreamAbort. subxid == xid: the transaction is forgotten and its file removed.
  // Otherwise the file is cut back to the subtransaction's first change, and the
  // subtransactions first seen after it are forgotten; Relation and Type messages of the
  // part cut off are kept (pgoutput sends a relation's description once per streamed
  // transaction and would not send it again). A transaction or subtransaction the spool
  // does not know (nothing of it was streamed) is ignored. Throws Error(kDecode) inside a
  // segment, Error(kStore) on an I/O failure.
  void abort(uint32_t xid, uint32_t subxid);

  // StreamCommit: calls `fn` with each stored message of `xid`, in order (the span is
  // valid during the call only), then forgets the transaction and removes its file. What
  // `fn` throws ends the replay (the transaction is forgotten all the same). Throws
  // Error(kDecode) when the spool holds no such transaction, Error(kStore) when its file
  // cannot be read back.
  void replay(uint32_t xid, const std::function<void(std::span<const uint8_t>)>& fn);

  // Forgets transaction `xid` and removes its file (a commit that is not to be applied).
  void discard(uint32_t xid) { forget(xid); }

  // Streamed transactions neither committed nor aborted yet.
  size_t in_progress() const { return txns_.size(); }
  // Bytes of messages stored for transaction `xid` (0 when unknown).
  uint64_t size_of(uint32_t xid) const;
  const std::filesystem::path& dir() const { return dir_; }

  // Where the spool of the store at `store_uri` lives: beside it, the store's path +
  // ".stream-spool" (a directory).
  static std::filesystem::path dir_for(const std::string& store_uri);

 private:
  struct Subxact {
    uint32_t xid = 0;
    uint64_t offset = 0;  // of its first change in the file
  };
  struct Txn {
    std::filesystem::path path;
    uint64_t size = 0;         // bytes in the file, buffered ones included
    std::vector<Subxact> subxacts;  // in the order first seen
    uint32_t last_subxid = 0;  // the subtransaction of the last message (worker.c's subxact_last)
  };

  Txn& txn(uint32_t xid);
  void forget(uint32_t xid);
  // Writes `n` bytes at the end of the open transaction's file (through the buffer).
  void write(const void* data, size_t n);
  void flush();
  void write_through(const uint8_t* p, size_t n);
  // Closes the open file: flushed first (close_file, which throws Error(kStore) on a
  // failed write), or not (drop_file: its transaction is being forgotten).
  void close_file();
  void drop_file() noexcept;

  std::filesystem::path dir_;
  bool dir_made_ = false;
  std::map<uint32_t, Txn> txns_;
  // The open segment's transaction and file.
  Txn* open_ = nullptr;
  uint32_t open_xid_ = 0;
  int fd_ = -1;
  uint64_t flushed_ = 0;     // bytes of the open file on disk
  std::vector<uint8_t> buffer_;
};

}  // namespace pgseed
