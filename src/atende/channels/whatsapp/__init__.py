"""The WhatsApp channel (Meta's Cloud API): ``channel`` is registered in
``atende.bootstrap.CHANNELS``; its webhook is ``webhook``, its Graph API calls ``graph``."""
