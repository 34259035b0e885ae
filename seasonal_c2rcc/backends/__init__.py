"""Processing backends: where C2RCC runs for a planned job.

``eocanvas`` runs the SNAP graph on WEkEO's serverless EOCanvas service (:mod:`.eocanvas`).
"""
