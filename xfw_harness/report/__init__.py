"""Report: the HTML report of a results document, one self-contained file (html.py, templates/report.html and its
script templates/report.js; each test point's Keras backends side by side), and
the headless-browser helper that opens it for the end-to-end test and the load-time figures (browser.py).
"""
