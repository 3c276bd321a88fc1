// LayerTransaction: a layer being written into a SnapshotBackend (begin_layer), aborted when it
// goes out of scope uncommitted, so that no early return of an import leaves a partial layer
// behind (and no return path has to remember abort_layer).
//
//   auto tx = BERTH_TRY(LayerTransaction::begin(backend, chain_id, parent));
//   extract into tx.writer().path ...              // any error return aborts
//   BERTH_TRY_VOID(tx.commit());                   // a failed commit still aborts on scope exit
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "basic/result.h"
#include "store/backend.h"

namespace berth::store {

class LayerTransaction {
public:
    static Result<LayerTransaction> begin(SnapshotBackend& backend, const std::string& chain_id,
                                          const std::optional<std::string>& parent) {
        auto w = BERTH_TRY(backend.begin_layer(chain_id, parent));
        return LayerTransaction(backend, std::move(w));
    }
    LayerTransaction(LayerTransaction&& o) noexcept
        : backend_(std::exchange(o.backend_, nullptr)), writer_(std::move(o.writer_)) {}
    LayerTransaction& operator=(LayerTransaction&&) = delete;
    LayerTransaction(const LayerTransaction&) = delete;
    ~LayerTransaction() {
        if (backend_) (void)backend_->abort_layer(writer_);
    }

    // The staging tree; set writer().chain_id before commit() to commit under another id.
    LayerWriter& writer() { return writer_; }

    // Commits under writer().chain_id. On failure the transaction stays open (and aborts when
    // dropped), as commit_layer leaves the writer abortable.
    Result<> commit() {
        BERTH_TRY_VOID(backend_->commit_layer(writer_));
        backend_ = nullptr;
        return {};
    }
    // Aborts now, reporting a failure (the destructor cannot).
    Result<> abort() {
        auto* b = std::exchange(backend_, nullptr);
        return b->abort_layer(writer_);
    }

private:
    LayerTransaction(SnapshotBackend& backend, LayerWriter writer)
        : backend_(&backend), writer_(std::move(writer)) {}

    SnapshotBackend* backend_;  // null once committed or aborted
    LayerWriter writer_;
};

}  // namespace berth::store
