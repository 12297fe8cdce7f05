"""The origin keeps the transparency log (docs/transparency.md, "Origin").

- :mod:`.leaves`: which leaves a publishing round appends, recorded in SQLite in
  the transaction that records the round's index version;
- :mod:`.signed`: the last checkpoint this origin signed (``DATA/state``, fsynced);
- :mod:`.tree`: tiles and entry bundles under ``DATA/public/tlog/`` (full tiles
  are never rewritten), reading them back, removing dead partial tiles;
- :mod:`.witnesses`: fetching the witnesses' cosigned views and judging them
  (the restore-from-backup check);
- :mod:`.proofs`: ``.tlog-proof`` files once the quorum has cosigned;
- :mod:`.writer`: :class:`~.writer.LogWriter`, the rounds' side: append, write
  tiles, sign only what extends the last signed checkpoint;
- :mod:`.keeper`: :class:`~.keeper.LogKeeper`, the writer plus the background
  gathering (witnesses, cosignatures, proofs, partial tiles) and /healthz.
"""
