// Rows as they travel from the source to a store: each value in PostgreSQL's text form.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pgseed {

// One column value. `text` points into a buffer owned by whoever produced the row
// (a RowBatch, a decoded pgoutput message) and is valid only as long as that buffer.
struct Datum {
  enum class Kind : uint8_t {
    kNull,
    kText,
    kUnchanged,  // unchanged TOASTed value: pgoutput sent no value, keep the stored one
  };
  Kind kind = Kind::kNull;
  std::string_view text;

  static Datum null() { return {Kind::kNull, {}}; }
  static Datum of(std::string_view t) { return {Kind::kText, t}; }
  static Datum unchanged() { return {Kind::kUnchanged, {}}; }
  bool is_null() const { return kind == Kind::kNull; }
};

using Row = std::vector<Datum>;

// Many rows in one contiguous buffer: what a copy worker hands to the store writer.
class RowBatch {
 public:
  void add_text(std::string_view text) {
    cells_.push_back({data_.size(), text.size(), Datum::Kind::kText});
    data_.append(text);
  }
  // Appends raw bytes to the current text cell (used by parsers that unescape piecewise).
  void begin_text() { cells_.push_back({data_.size(), 0, Datum::Kind::kText}); }
  void append_to_text(std::string_view part) {
    data_.append(part);
    cells_.back().len += part.size();
  }
  void append_char(char c) {
    data_.push_back(c);
    cells_.back().len += 1;
  }
  // For formatters that append to a std::string: begin_text(), append the value to
  // text_buffer(), then end_text().
  std::string& text_buffer() { return data_; }
  void end_text() { cells_.back().len = data_.size() - cells_.back().off; }
  void add_null() { cells_.push_back({0, 0, Datum::Kind::kNull}); }
  // Room for `text_bytes` of values in `cells` cells, so that filling does not reallocate.
  void reserve(size_t text_bytes, size_t cells) {
    data_.reserve(text_bytes);
    cells_.reserve(cells);
  }
  void end_row() { row_ends_.push_back(cells_.size()); }
  // Drops the values added since the last end_row() (a row that failed half-way).
  void discard_unfinished_row() {
    size_t keep = row_ends_.empty() ? 0 : row_ends_.back();
    if (keep == cells_.size()) return;
    size_t first_text = data_.size();
    for (size_t c = keep; c < cells_.size(); ++c)
      if (cells_[c].kind == Datum::Kind::kText) first_text = std::min(first_text, cells_[c].off);
    cells_.resize(keep);
    data_.resize(first_text);
  }

  size_t rows() const { return row_ends_.size(); }
  size_t bytes() const { return data_.size() + cells_.size() * sizeof(Cell); }
  size_t text_bytes() const { return data_.size(); }
  bool empty() const { return row_ends_.empty(); }
  void clear() {
    data_.clear();
    cells_.clear();
    row_ends_.clear();
  }

  // Fills `out` with the values of row i (views into this batch).
  void row(size_t i, Row& out) const {
    size_t begin = i == 0 ? 0 : row_ends_[i - 1];
    size_t end = row_ends_[i];
    out.clear();
    for (size_t c = begin; c < end; ++c) {
      const Cell& cell = cells_[c];
      out.push_back({cell.kind, std::string_view(data_.data() + cell.off, cell.len)});
    }
  }

 private:
  struct Cell {
    size_t off;
    size_t len;
    Datum::Kind kind;
  };
  std::string data_;
  std::vector<Cell> cells_;
  std::vector<size_t> row_ends_;
};

}  // namespace pgseed
