#include "pg/copy_buffer.h"

#include <libpq-fe.h>

namespace pgseed::pg {

void CopyBuffer::reset() {
  if (data_) PQfreemem(data_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace pgseed::pg
