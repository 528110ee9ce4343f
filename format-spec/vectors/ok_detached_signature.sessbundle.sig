sessbundle-signature-v1
key-id: 639c3baa8ef57183
trusted-comment: time:1795000000 bundle:b13d184dfa50bffc997784d3e8046eb4 signer:vectors
signature: IBUxGvefdBUh1V8qQrm66gpOhEgmHed/qtz5vEBemvH5DTcQ6/lbQNfjAzWRnQb876R/KJfJlmE5+CIygVKiDA==
