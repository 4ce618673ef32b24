"""The state database: the only sqlite3 user.

May import: the pure life-cycle values it persists (``solve.drafts``, ``solve.match``),
errors. sqlite's errors become ``StoreError`` here.
"""
