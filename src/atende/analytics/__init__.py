"""Analytics: each conversation's figures in business time, kept fresh by a periodic job, and
the charts the dashboard's analytics page draws from them (``charts``: a declarative list)."""
