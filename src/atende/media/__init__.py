"""Media: the files a conversation carries (WhatsApp images and voice notes, e-mail
attachments, agents' uploads), kept in a media store and described by a ``media`` row.

``store`` is the port: a ``MediaStore`` keeps bytes under a key, in a local folder
(``local``, the default) or an S3-compatible bucket (``s3``), chosen by ``ATENDE_MEDIA_*``.
``service`` is what other domains call: it checks the size limit, hashes and stores a file
for the session's company, and reads or deletes it by id; a company never reaches another's
file, as a key is ``<company id>/<media id>`` and every lookup goes through its scoped session.
``serving`` says how a file is sent to a browser (type, disposition, a sandbox), for the
API's and the dashboard's routes alike.
"""
